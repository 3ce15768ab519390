"""Which key each route needs: the access column of the route table (services/api/route_table.py)
and one pure function over it.

The app refuses to start with a route that has no level (services/api/guard.py asks
`required_access` for each), so a new route is never left open by accident; the levels are
those of services/http/route_spec.py.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from types import MappingProxyType
from typing import Final

from services.api.metrics import PATH as METRICS_PATH
from services.api.read import DECISION_PATH
from services.api.route_table import ROUTES
from services.api.suppressions import PATH as SUPPRESSIONS_PATH
from services.http.route_spec import PUBLIC, access_map, session_routes
from services.identity.api_keys import AUDIENCE, AUDIT

#: (method, route template) -> access level (a scope, or a level of services/http/route_spec.py)
ROUTE_ACCESS: Final[Mapping[tuple[str, str], str]] = MappingProxyType(access_map(ROUTES))

#: (method, route template) of the routes a staff session may call in place of a key
SESSION_ROUTES: Final = session_routes(ROUTES)

#: routes whose `at=` (an as-of read: what the ledger knew then) needs the audit scope
AS_OF_ROUTES: Final = frozenset({("GET", DECISION_PATH), ("POST", DECISION_PATH)})

#: routes whose `include_identifiers` (decrypted addresses) needs the audience scope, so a
#: sending tool's audience key reads them without also holding the route's own scope
ADDRESS_ROUTES: Final = frozenset({("GET", SUPPRESSIONS_PATH)})


class UnclassifiedRoute(LookupError):
    """A route has no row in ROUTE_ACCESS: declare it in services/api/route_table.py."""


def required_access(
    method: str, path: str, query: Collection[str] = (), *, metrics_public: bool = False
) -> str:
    """The access level a request needs: `path` is the route template, `query` the names of
    its query parameters (of a POST twin, its body's fields). HEAD is GET's; /metrics is public
    when LEDGER_METRICS_PUBLIC is on."""
    verb = "GET" if method == "HEAD" else method
    try:
        level = ROUTE_ACCESS[(verb, path)]
    except KeyError:
        raise UnclassifiedRoute(f"{verb} {path} has no row in ROUTE_ACCESS") from None
    if path == METRICS_PATH and metrics_public:
        return PUBLIC
    if (verb, path) in AS_OF_ROUTES and "at" in query:
        return AUDIT
    if (verb, path) in ADDRESS_ROUTES and "include_identifiers" in query:
        return AUDIENCE
    return level
