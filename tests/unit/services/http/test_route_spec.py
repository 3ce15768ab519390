"""A route's one declaration (services/http/route_spec.py) and the table of them
(services/api/route_table.py): no route without a valid access level, none declared twice, and the
router, the access table and the document each see every route once."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from services.api.access import ROUTE_ACCESS
from services.api.route_table import POST_TWINS, ROUTES
from services.http.route_spec import (
    ACCESS_LEVELS,
    PUBLIC,
    TOKEN_PAGE,
    RouteSpec,
    TwinOf,
    access_map,
    starlette_routes,
)
from services.http.subjects import lookup_fields
from services.identity.api_keys import AUDIT, DECIDE

OPERATION: dict[str, Any] = {"responses": {}}


async def first(request: Request) -> Response:
    return PlainTextResponse("first")


async def second(request: Request) -> Response:
    return PlainTextResponse("second")


@pytest.mark.parametrize(
    ("method", "access"),
    [("GET", ""), ("GET", "everyone"), ("GET", "Audit"), ("HEAD", DECIDE), ("get", DECIDE)],
)
def test_a_route_needs_a_known_method_and_access_level(method: str, access: str) -> None:
    with pytest.raises(ValueError, match="/v1/thing"):
        RouteSpec(method, "/v1/thing", first, access, OPERATION)


@pytest.mark.parametrize("access", ACCESS_LEVELS)
def test_every_access_level_makes_a_route(access: str) -> None:
    assert RouteSpec("GET", "/v1/thing", first, access, OPERATION).access == access


def test_a_route_declared_twice_is_refused() -> None:
    once = RouteSpec("GET", "/v1/thing", first, DECIDE, OPERATION)
    again = RouteSpec("GET", "/v1/thing", second, AUDIT, OPERATION)
    other = RouteSpec("POST", "/v1/thing", second, AUDIT, OPERATION)
    assert access_map([once, other]) == {("GET", "/v1/thing"): DECIDE, ("POST", "/v1/thing"): AUDIT}
    with pytest.raises(ValueError, match="GET /v1/thing is declared twice"):
        access_map([once, other, again])


def test_a_twin_runs_its_get_routes_handler_at_its_level() -> None:
    get = RouteSpec("GET", "/v1/things/{thing_id}", first, AUDIT, OPERATION)
    assert get.twin("/v1/things/by-identifier") == RouteSpec(
        "POST", "/v1/things/by-identifier", first, AUDIT, TwinOf("/v1/things/{thing_id}")
    )


def test_the_router_keeps_the_order_and_joins_one_handlers_methods_on_one_path() -> None:
    specs = [
        RouteSpec("GET", "/u/{token}", first, TOKEN_PAGE, OPERATION),
        RouteSpec("POST", "/u/{token}", first, TOKEN_PAGE, OPERATION),
        RouteSpec("POST", "/v1/notices", first, DECIDE, OPERATION),
        RouteSpec("GET", "/v1/notices", second, DECIDE, OPERATION),
        RouteSpec("GET", "/healthz", second, PUBLIC, OPERATION),
        RouteSpec("POST", "/u/{token}", second, TOKEN_PAGE, OPERATION),
    ]
    routes = starlette_routes(specs)
    assert [(r.path, r.endpoint, sorted(r.methods or ())) for r in routes] == [
        ("/u/{token}", first, ["GET", "HEAD", "POST"]),
        ("/v1/notices", first, ["POST"]),
        ("/v1/notices", second, ["GET", "HEAD"]),
        ("/healthz", second, ["GET", "HEAD"]),
        ("/u/{token}", second, ["POST"]),
    ]


def test_the_table_declares_each_route_once_with_its_level() -> None:
    assert len(ROUTE_ACCESS) == len(ROUTES)
    assert all(ROUTE_ACCESS[(s.method, s.path)] == s.access for s in ROUTES)


def test_every_lookup_route_has_its_post_twin_and_only_those_are_twins() -> None:
    twins = {s.operation.get_path: s for s in ROUTES if isinstance(s.operation, TwinOf)}
    assert {get: twin.path for get, twin in twins.items()} == dict(POST_TWINS)
    gets = {s.path: s for s in ROUTES if s.method == "GET"}
    for get, twin in twins.items():
        assert (twin.method, twin.endpoint, twin.access) == (
            "POST",
            gets[get].endpoint,
            gets[get].access,
        )


async def test_a_twins_body_is_refused_outside_the_access_check() -> None:
    """lookup_fields checks a POST body's fields through the guarded route; a route that is
    not behind the check fails closed."""

    async def lookup(request: Request) -> Response:
        f = await lookup_fields(request)
        return JSONResponse(f.data)

    app = Starlette(routes=starlette_routes([RouteSpec("POST", "/x", lookup, AUDIT, OPERATION)]))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        with pytest.raises(TypeError, match="/x is not behind the access check"):
            await client.post("/x", json={"email": "a@example.com"})
