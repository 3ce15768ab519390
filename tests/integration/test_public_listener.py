"""The public-pages listener (security review L5) against a real API serving two sockets the
way `consent-ledger api` does: LEDGER_PUBLIC_PORT answers the unsubscribe and preference pages
and 404 to the API; LEDGER_PORT serves it all. Which paths the public port refuses, even with
the admin key, is checked in-process: tests/unit/services/api/test_public_listener.py."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from services.api.app import create_app
from services.api.public_listener import listener_sockets
from services.config import Settings
from services.stack.embedded import free_port
from tests.conftest import ADMIN_HEADERS, make_settings, running_projector
from tests.integration.served_api import served
from tests.integration.unsubscribe_support import ONE_CLICK, issue, new_subject, path_of
from tests.servers import Servers

pytestmark = pytest.mark.integration

#: routes the public port must not serve
#: (tests/unit/services/api/test_public_listener.py has them all)
NOT_PUBLIC = [
    ("GET", "/v1/purposes"),
    ("GET", "/v1/decision?subject_id=x&purpose=newsletter&channel=email"),
    ("POST", "/v1/subjects/pl-1/consents"),
    ("GET", "/audit/subjects/pl-1"),
    ("GET", "/v1/access-log?subject_id=pl-1"),
    ("GET", "/readyz"),
    ("GET", "/openapi.json"),
    ("GET", "/metrics"),
    ("GET", "/.well-known/jwks.json"),
]


@pytest.fixture(scope="module")
async def listeners(
    real_servers: Servers,
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """(a client of LEDGER_PORT with the admin key, one of LEDGER_PUBLIC_PORT with it too)."""
    settings: Settings = await make_settings(
        real_servers,
        LEDGER_PORT=str(free_port()),
        LEDGER_PUBLIC_PORT=str(free_port()),
        LEDGER_PUBLIC_HOST="127.0.0.1",
        LEDGER_METRICS_PUBLIC="true",
    )
    sockets = listener_sockets(settings)
    async with (
        running_projector(settings),
        served(create_app(settings), settings, sockets),
        httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{settings.port}", headers=ADMIN_HEADERS, timeout=30
        ) as internal,
        httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{settings.public_port}", headers=ADMIN_HEADERS, timeout=30
        ) as public,
    ):
        yield internal, public


async def test_the_public_port_serves_the_pages(
    listeners: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    internal, public = listeners
    links = await issue(internal, subject_id=new_subject(), purpose="newsletter", channel="email")
    for url in (links["url"], links["preferences_url"]):
        page = await public.get(path_of(url))
        assert page.status_code == 200 and "text/html" in page.headers["content-type"], url
    done = await public.post(path_of(links["url"]), data=ONE_CLICK)
    assert done.status_code == 200, done.text


@pytest.mark.parametrize(("method", "path"), NOT_PUBLIC)
async def test_the_api_port_serves_what_the_public_port_refuses(
    listeners: tuple[httpx.AsyncClient, httpx.AsyncClient], method: str, path: str
) -> None:
    internal, public = listeners
    refused = await public.request(method, path, json={"purpose": "newsletter"})
    assert refused.status_code == 404, refused.text
    assert refused.json()["detail"] == "Not Found"  # as for a path no route matches
    # the same request on the API port reaches its route (whatever the route answers)
    there = await internal.request(method, path, json={"purpose": "newsletter"})
    unmatched = there.headers["content-type"] == "application/problem+json" and (
        there.json().get("detail") == "Not Found"
    )
    assert not unmatched, path


async def test_the_public_port_takes_a_banners_choices(
    listeners: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    """The banner script and the collect endpoint are both on the port meant for the internet:
    a page that loads the script from there can record through it."""
    internal, public = listeners
    origin = "https://www.example.com"
    site = await internal.post("/v1/sites", json={"name": "shop", "origins": [origin]})
    assert site.status_code == 201, site.text
    banner = {"Authorization": f"Bearer {site.json()['key']}", "Origin": origin}
    preflight = await public.options(
        "/v1/collect/consents",
        headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == origin
    recorded = await public.post(
        "/v1/collect/consents", json={"choices": {"cookies_analytics": True}}, headers=banner
    )
    assert recorded.status_code == 201, recorded.text
    assert (await public.get("/sdk/consent.js")).status_code == 200
