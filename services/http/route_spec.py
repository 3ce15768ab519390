"""A route's one declaration: method, path, handler, who may call it and its OpenAPI operation.

services/api/route_table.py lists every route as a RouteSpec; the router, the access check
(services/api/access.py, services/api/guard.py) and the OpenAPI document
(services/api/openapi.py) are all built from that list. A spec cannot be made without an
access level, so no route is ever served open by accident.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.identity.api_keys import SCOPES
from services.rules.catalogue import Catalogue

Endpoint = Callable[[Request], Awaitable[Response]]

#: no key: health, the OpenAPI document, the receipt-verifying public keys
PUBLIC: Final = "public"
#: no key, rate-limited per client address: the unsubscribe and preference pages
TOKEN_PAGE: Final = "token-page"
#: any valid key, whatever its scopes: reference data that names no subject
ANY_KEY: Final = "any-key"
#: no key needed, but a valid key (any scope) is checked and sees more: /readyz's details
KEY_OPTIONAL: Final = "key-optional"
#: a website's publishable key (`pk_...`) from one of its origins: the banner's routes; no
#: other route accepts such a key (services/api/site_guard.py)
SITE_KEY: Final = "site-key"
#: what a route may need: one of the five above, or a key with a scope (admin implies all)
ACCESS_LEVELS: Final = (PUBLIC, TOKEN_PAGE, KEY_OPTIONAL, ANY_KEY, SITE_KEY, *SCOPES)
#: OPTIONS only for a CORS preflight (the banner's routes)
METHODS: Final = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

#: an OpenAPI operation object, or how to make one from the purpose catalogue
OperationOf = Callable[[Catalogue], Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class TwinOf:
    """The operation of a POST twin (services/http/subjects.py): its GET route's, with the
    query fields as a JSON body."""

    get_path: str


@dataclass(frozen=True, slots=True)
class RouteSpec:
    method: str
    path: str
    endpoint: Endpoint
    #: a scope of services/identity/api_keys.py, or PUBLIC, TOKEN_PAGE, ANY_KEY, KEY_OPTIONAL,
    #: SITE_KEY
    access: str
    operation: Mapping[str, Any] | OperationOf | TwinOf
    #: a signed-in staff session (services/http/staff_auth.py) may stand in for the key: the
    #: auditor's pages and the downloads they link to
    session: bool = False

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"{self.path}: method {self.method!r} is not one of {sorted(METHODS)}")
        if self.access not in ACCESS_LEVELS:
            raise ValueError(
                f"{self.method} {self.path}: access {self.access!r} is not one of {ACCESS_LEVELS}"
            )

    def twin(self, path: str) -> RouteSpec:
        """The POST twin of this GET route at `path`: the same handler and access level."""
        return RouteSpec("POST", path, self.endpoint, self.access, TwinOf(self.path))


def session_routes(specs: Sequence[RouteSpec]) -> frozenset[tuple[str, str]]:
    """(method, path) of every route a staff session may call."""
    return frozenset((spec.method, spec.path) for spec in specs if spec.session)


def access_map(specs: Sequence[RouteSpec]) -> dict[tuple[str, str], str]:
    """(method, path) -> access level; ValueError for a route declared twice."""
    out: dict[tuple[str, str], str] = {}
    for spec in specs:
        if (spec.method, spec.path) in out:
            raise ValueError(f"{spec.method} {spec.path} is declared twice")
        out[(spec.method, spec.path)] = spec.access
    return out


def starlette_routes(specs: Sequence[RouteSpec]) -> list[Route]:
    """The router's routes, in the specs' order (the router tries them in order); adjacent
    specs of one path and handler make one route, so a 405 names all their methods."""
    grouped: list[tuple[str, Endpoint, list[str]]] = []
    for spec in specs:
        if grouped and grouped[-1][:2] == (spec.path, spec.endpoint):
            grouped[-1][2].append(spec.method)
        else:
            grouped.append((spec.path, spec.endpoint, [spec.method]))
    return [Route(path, endpoint, methods=methods) for path, endpoint, methods in grouped]


FieldsCheck = Callable[[Request, Collection[str]], None]


class GuardedRoute(Route):
    """A route behind the access check (services/api/guard.py). The check sees the query
    string; `check_fields` runs it again on the fields of a JSON body, which a POST twin's
    handler reads (services/http/subjects.py `lookup_fields`)."""

    def __init__(
        self,
        path: str,
        endpoint: Endpoint,
        *,
        methods: list[str],
        name: str | None,
        check_fields: FieldsCheck,
    ) -> None:
        super().__init__(path, endpoint, methods=methods, name=name)
        self.check_fields = check_fields
