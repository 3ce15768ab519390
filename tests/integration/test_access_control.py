"""API keys over real sockets: each scope opens the routes that read PostgreSQL, public routes
need none, and revocation takes effect within LEDGER_API_KEY_REFRESH_S. The refusals (401, 403,
the pages' 429) are checked in-process: tests/unit/services/api/test_access_control.py."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from services.config import Settings
from services.identity.api_key_store import revoke_key
from services.identity.api_keys import ADMIN, AUDIT, DECIDE, RECORD
from tests.conftest import make_settings, running_api, running_projector, wait_until
from tests.integration.access_support import accepted, bearer, client_of, made_key
from tests.servers import Servers

pytestmark = pytest.mark.integration

REFRESH_S = 2


@pytest.fixture(scope="module")
async def tuned_settings(real_servers: Servers) -> Settings:
    """Fast key reloads and public metrics."""
    return await make_settings(
        real_servers, LEDGER_API_KEY_REFRESH_S=str(REFRESH_S), LEDGER_METRICS_PUBLIC="true"
    )


@pytest.fixture(scope="module")
async def tuned_api(tuned_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with running_projector(tuned_settings), running_api(tuned_settings) as client:
        yield client


SUBJECT = "ac-matrix"
DECISION = {"subject_id": SUBJECT, "purpose": "newsletter", "channel": "email"}
AS_OF = {**DECISION, "at": "2026-01-01T00:00:00Z"}
BATCH = {"purpose": "newsletter", "channel": "email"}
#: (scope of the key, method, path, query, body), each answered 200: the routes whose answer reads
#: PostgreSQL; every other check of the scopes is in tests/unit/services/api/test_access_control.py
MATRIX: list[tuple[str, str, str, dict[str, str], dict[str, Any] | None]] = [
    (DECIDE, "POST", "/v1/decisions/batch", {}, {**BATCH, "subjects": [SUBJECT]}),
    (DECIDE, "GET", "/v1/suppressions", {"channel": "email"}, None),
    (RECORD, "GET", "/v1/notices", {}, None),
    (AUDIT, "GET", f"/v1/subjects/{SUBJECT}/consent", {}, None),
    (AUDIT, "GET", "/v1/decision", AS_OF, None),
    (AUDIT, "GET", "/v1/requests", {}, None),
    (AUDIT, "GET", f"/audit/subjects/{SUBJECT}", {}, None),
    (AUDIT, "GET", "/v1/access-log", {"subject_id": SUBJECT}, None),
    (ADMIN, "GET", "/metrics", {}, None),
]


async def test_each_scope_opens_its_routes_only(
    module_api: httpx.AsyncClient, module_settings: Settings
) -> None:
    api = module_api
    granted = await api.post(f"/v1/subjects/{SUBJECT}/consents", json={"purpose": "newsletter"})
    token = granted.json()["token"]
    await api.get(f"/v1/subjects/{SUBJECT}/events", params={"min_token": token})
    keys = {
        scope: (await made_key(module_settings, api, scope, name=scope))[1]
        for scope in (DECIDE, RECORD, AUDIT, ADMIN)
    }
    for scope, method, path, query, body in MATRIX:
        async with client_of(api, keys[scope]) as client:
            response = await client.request(method, path, params=query, json=body)
        where = f"{scope} key: {method} {path} {query}"
        assert response.status_code == 200, f"{where}: {response.text}"


async def test_public_routes_need_no_key(module_api: httpx.AsyncClient) -> None:
    api = module_api
    link = await api.post(
        "/v1/unsubscribe-links",
        json={"subject_id": "ac-public", "purpose": "newsletter", "channel": "email"},
    )
    assert link.status_code == 200, link.text
    url = httpx.URL(link.json()["url"])
    async with client_of(api) as anonymous:
        ready = await anonymous.get("/readyz")
        assert ready.status_code == 200, ready.text
        page = await anonymous.get(url.path)
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]


@pytest.mark.parametrize("how", ["keys revoke (NOTIFY)", "an update nobody announces"])
async def test_a_revoked_key_stops_working_within_the_refresh_interval(
    tuned_api: httpx.AsyncClient, tuned_settings: Settings, how: str
) -> None:
    kid, key = await made_key(tuned_settings, tuned_api, DECIDE)
    conn = await asyncpg.connect(tuned_settings.database_url)
    try:
        if how.startswith("keys revoke"):
            assert await revoke_key(conn, kid) is not None
        else:
            await conn.execute("UPDATE api_keys SET revoked_at = now() WHERE key_id = $1", kid)
    finally:
        await conn.close()
    revoked_at = time.monotonic()

    async def refused() -> bool:
        return not await accepted(tuned_api, key)

    await wait_until(refused, REFRESH_S + 3, "the revoked key to be refused")
    assert time.monotonic() - revoked_at <= REFRESH_S + 1  # the documented bound, and a request

    async def says_revoked() -> bool:
        response = await tuned_api.get("/v1/purposes", headers=bearer(key))
        return response.status_code == 401 and "revoked" in response.json()["detail"]

    await wait_until(says_revoked, 5, "a 401 that says the key is revoked")


async def test_metrics_are_public_with_ledger_metrics_public(tuned_api: httpx.AsyncClient) -> None:
    async with client_of(tuned_api) as anonymous:
        assert (await anonymous.get("/metrics")).status_code == 200
