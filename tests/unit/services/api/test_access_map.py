"""The route -> scope table against the app's routes: every route classified, none left open
by accident, and the levels a reviewer expects for the routes that matter most."""

from __future__ import annotations

import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from services.api.access import ROUTE_ACCESS, UnclassifiedRoute, required_access
from services.api.app import routes
from services.api.guard import protect
from services.config import Settings
from services.http.route_spec import ACCESS_LEVELS, ANY_KEY, KEY_OPTIONAL, PUBLIC, TOKEN_PAGE
from services.identity.api_keys import ADMIN, AUDIT, DECIDE, NOTICES, RECORD, REQUESTS
from services.web.page_limits import PageLimits

ROUTES = [
    (method, route.path)
    for route in routes()
    for method in sorted(route.methods or ())
    if method != "HEAD"
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_route_has_an_access_level(method: str, path: str) -> None:
    assert required_access(method, path) in ACCESS_LEVELS


def test_the_table_names_only_routes_that_exist() -> None:
    assert set(ROUTE_ACCESS) == set(ROUTES)


@pytest.mark.parametrize(
    ("method", "path", "query", "expected"),
    [
        ("GET", "/v1/decision", (), DECIDE),
        ("GET", "/v1/decision", ("subject_id", "purpose", "channel", "at"), AUDIT),
        ("HEAD", "/v1/decision", ("at",), AUDIT),
        ("POST", "/v1/decisions/batch", (), DECIDE),
        ("GET", "/v1/suppressions", (), DECIDE),
        ("GET", "/v1/reconsent", (), DECIDE),
        ("POST", "/v1/subjects/{subject_id}/consents", (), RECORD),
        ("POST", "/v1/subjects/{subject_id}/objections/lift", (), RECORD),
        ("POST", "/v1/subjects/{subject_id}/identifiers", (), RECORD),
        ("DELETE", "/v1/subjects/{subject_id}/identifiers", (), RECORD),
        ("POST", "/v1/unsubscribe-links", (), RECORD),
        # publishing a notice can outdate every consent: its own scope, not the forms' one
        ("POST", "/v1/notices", (), NOTICES),
        # receiving a request is intake (forms, the CRM); handling it is the privacy team's
        ("POST", "/v1/requests", (), RECORD),
        ("POST", "/v1/requests/{request_id}/verify", (), REQUESTS),
        ("POST", "/v1/requests/{request_id}/extend", (), REQUESTS),
        ("POST", "/v1/requests/{request_id}/complete", (), REQUESTS),
        ("POST", "/v1/requests/{request_id}/refuse", (), REQUESTS),
        ("GET", "/v1/requests", (), AUDIT),
        ("GET", "/v1/requests/{request_id}", (), AUDIT),
        ("GET", "/v1/subjects/{subject_id}/consent", (), AUDIT),
        ("GET", "/v1/subjects/{subject_id}/consent", ("at",), AUDIT),
        ("GET", "/v1/subjects/{subject_id}/events", (), AUDIT),
        ("GET", "/v1/subjects/{subject_id}/history", (), AUDIT),
        ("GET", "/v1/subjects/{subject_id}/export", (), AUDIT),
        ("GET", "/v1/subjects/{subject_id}/verify", (), AUDIT),
        ("GET", "/v1/receipts/{event_id}", (), AUDIT),
        ("GET", "/audit/subjects/{subject_id}", (), AUDIT),
        ("GET", "/v1/access-log", (), AUDIT),
        ("POST", "/v1/subjects/{subject_id}/erasure", (), ADMIN),
        ("GET", "/metrics", (), ADMIN),
        ("GET", "/v1/purposes", (), ANY_KEY),
        ("GET", "/v1/notices", (), ANY_KEY),
        ("GET", "/u/{token}", (), TOKEN_PAGE),
        ("POST", "/p/{token}", (), TOKEN_PAGE),
        ("GET", "/healthz", (), PUBLIC),
        ("GET", "/readyz", (), KEY_OPTIONAL),
        ("GET", "/openapi.json", (), PUBLIC),
        ("GET", "/.well-known/jwks.json", (), PUBLIC),
    ],
)
def test_access_levels(method: str, path: str, query: tuple[str, ...], expected: str) -> None:
    assert required_access(method, path, query) == expected


@pytest.mark.parametrize(("public", "expected"), [(False, ADMIN), (True, PUBLIC)])
def test_metrics_are_public_only_when_configured(public: bool, expected: str) -> None:
    assert required_access("GET", "/metrics", metrics_public=public) == expected


def test_only_metrics_follow_the_metrics_setting() -> None:
    for method, path in ROUTES:
        if path != "/metrics":
            on = required_access(method, path, metrics_public=True)
            assert on == required_access(method, path), (method, path)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/subjects/{subject_id}/secrets"),
        ("PUT", "/v1/subjects/{subject_id}/consents"),
        ("GET", "/v1/subjects/{subject_id}/consents"),
    ],
)
def test_an_unclassified_route_is_refused(method: str, path: str) -> None:
    with pytest.raises(UnclassifiedRoute, match="ROUTE_ACCESS"):
        required_access(method, path)


def test_the_app_does_not_start_with_an_unclassified_route() -> None:
    async def leak(request: Request) -> Response:
        return PlainTextResponse("secret")

    extra = Route("/v1/leak", leak, methods=["GET"])
    with pytest.raises(UnclassifiedRoute):
        settings = Settings.from_env({})
        protect([*routes(), extra], settings, PageLimits.from_settings(settings))


def test_record_no_longer_publishes_notices_or_handles_requests() -> None:
    """Security review M4: a form's `record` key cannot outdate every consent or close a
    rights request."""
    recorded = {route for route, level in ROUTE_ACCESS.items() if level == RECORD}
    assert ("POST", "/v1/notices") not in recorded
    assert not any(path.startswith("/v1/requests/{request_id}/") for _, path in recorded)
