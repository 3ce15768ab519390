"""API keys over real sockets: 401 without or with a bad key, 403 without the scope, the
right scope passes, public routes need none, revocation takes effect within
LEDGER_API_KEY_REFRESH_S, and the public pages' rate limit answers 429."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from services.config import Settings
from services.identity.api_key_store import revoke_key
from services.identity.api_keys import ADMIN, AUDIT, DECIDE, RECORD
from tests.conftest import make_settings, running_api, running_projector, wait_until
from tests.integration.access_support import PROBLEM, accepted, bearer, client_of, made_key
from tests.servers import Servers

pytestmark = pytest.mark.integration

REFRESH_S = 2


@pytest.fixture(scope="module")
async def tuned_settings(real_servers: Servers) -> Settings:
    """Fast key reloads, a tiny public rate limit and public metrics."""
    return await make_settings(
        real_servers,
        LEDGER_API_KEY_REFRESH_S=str(REFRESH_S),
        LEDGER_PUBLIC_RATE_PER_MIN="3",
        LEDGER_METRICS_PUBLIC="true",
    )


@pytest.fixture(scope="module")
async def tuned_api(tuned_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with running_projector(tuned_settings), running_api(tuned_settings) as client:
        yield client


def check_problem(response: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["type"] == f"urn:consent-ledger:problem:{kind}" and body["status"] == status
    return body


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer cl_nosuchkey_" + "A" * 43,
        "Bearer " + "x" * 40,
        "Basic dXNlcjpwYXNz",
        "Bearer",
    ],
)
async def test_a_missing_or_bad_key_is_401_and_writes_nothing(
    module_api: httpx.AsyncClient, header: str | None
) -> None:
    subject = "ac-" + uuid.uuid4().hex[:8]
    headers = {"Authorization": header} if header else {}
    async with client_of(module_api) as anonymous:
        write = await anonymous.post(
            f"/v1/subjects/{subject}/consents", json={"purpose": "newsletter"}, headers=headers
        )
        read = await anonymous.get(
            "/v1/decision",
            params={"subject_id": subject, "purpose": "newsletter", "channel": "email"},
            headers=headers,
        )
    for response in (write, read):
        check_problem(response, 401, "unauthorized")
        assert response.headers["www-authenticate"].startswith("Bearer ")
        secret = (header or "")[-40:]
        assert len(secret) < 20 or secret not in response.text  # never echoed
    # the refused command appended nothing: the subject's log starts with the next write
    written = await module_api.post(
        f"/v1/subjects/{subject}/withdrawals", json={"purpose": "newsletter"}
    )
    events = await module_api.get(
        f"/v1/subjects/{subject}/events", params={"min_token": written.json()["token"]}
    )
    assert [e["type"] for e in events.json()["events"]] == ["ConsentWithdrawn"]


SUBJECT = "ac-matrix"
DECISION = {"subject_id": SUBJECT, "purpose": "newsletter", "channel": "email"}
AS_OF = {**DECISION, "at": "2026-01-01T00:00:00Z"}
BATCH = {"purpose": "newsletter", "channel": "email"}
#: (scope of the key, method, path, query, body, expected status)
MATRIX: list[tuple[str, str, str, dict[str, str], dict[str, Any] | None, int]] = [
    (DECIDE, "GET", "/v1/decision", DECISION, None, 200),
    (DECIDE, "GET", "/v1/decision", AS_OF, None, 403),
    (DECIDE, "POST", "/v1/decisions/batch", {}, {**BATCH, "subjects": [SUBJECT]}, 200),
    (DECIDE, "GET", "/v1/suppressions", {"channel": "email"}, None, 200),
    (DECIDE, "GET", "/v1/purposes", {}, None, 200),
    (DECIDE, "POST", f"/v1/subjects/{SUBJECT}/consents", {}, {"purpose": "newsletter"}, 403),
    (DECIDE, "GET", f"/v1/subjects/{SUBJECT}/events", {}, None, 403),
    (DECIDE, "GET", "/metrics", {}, None, 403),
    (RECORD, "POST", f"/v1/subjects/{SUBJECT}/consents", {}, {"purpose": "newsletter"}, 201),
    (RECORD, "GET", "/v1/notices", {}, None, 200),
    (RECORD, "GET", "/v1/decision", DECISION, None, 403),
    (RECORD, "GET", f"/v1/subjects/{SUBJECT}/consent", {}, None, 403),
    (RECORD, "GET", "/v1/requests", {}, None, 403),
    (AUDIT, "GET", f"/v1/subjects/{SUBJECT}/consent", {}, None, 200),
    (AUDIT, "GET", "/v1/decision", AS_OF, None, 200),
    (AUDIT, "GET", "/v1/requests", {}, None, 200),
    (AUDIT, "GET", f"/audit/subjects/{SUBJECT}", {}, None, 200),
    (AUDIT, "GET", "/v1/access-log", {"subject_id": SUBJECT}, None, 200),
    (AUDIT, "GET", "/v1/decision", DECISION, None, 403),
    (AUDIT, "POST", f"/v1/subjects/{SUBJECT}/erasure", {}, {}, 403),
    # admin implies every scope; an empty erasure body is a 422, so it passed the check
    (ADMIN, "POST", f"/v1/subjects/{SUBJECT}/erasure", {}, {}, 422),
    (ADMIN, "GET", "/v1/decision", DECISION, None, 200),
    (ADMIN, "GET", "/metrics", {}, None, 200),
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
    for scope, method, path, query, body, status in MATRIX:
        async with client_of(api, keys[scope]) as client:
            response = await client.request(method, path, params=query, json=body)
        where = f"{scope} key: {method} {path} {query}"
        assert response.status_code == status, f"{where}: {response.text}"
        if status == 403:
            needed = AUDIT if "at" in query else NEEDED[path.split("/")[-1]]
            detail = check_problem(response, 403, "forbidden")["detail"]
            assert f"the {needed} scope" in detail, where
            challenge = response.headers["www-authenticate"]
            assert f'error="insufficient_scope", scope="{needed}"' in challenge, where


#: the scope a refused route of MATRIX needs, by its last path segment
NEEDED = {
    "decision": DECIDE,
    "consents": RECORD,
    "events": AUDIT,
    "consent": AUDIT,
    "requests": AUDIT,
    "erasure": ADMIN,
    "metrics": ADMIN,
}


async def test_public_routes_need_no_key(module_api: httpx.AsyncClient) -> None:
    api = module_api
    link = await api.post(
        "/v1/unsubscribe-links",
        json={"subject_id": "ac-public", "purpose": "newsletter", "channel": "email"},
    )
    assert link.status_code == 200, link.text
    url = httpx.URL(link.json()["url"])
    async with client_of(api) as anonymous:
        for path in ("/healthz", "/readyz", "/openapi.json", "/.well-known/jwks.json"):
            response = await anonymous.get(path)
            assert response.status_code == 200, f"{path}: {response.text}"
        page = await anonymous.get(url.path)
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        for path in ("/u/not-a-token", "/p/not-a-token"):
            refused = await anonymous.get(path)
            assert refused.status_code == 404 and "text/html" in refused.headers["content-type"]
        check_problem(await anonymous.get("/v1/purposes"), 401, "unauthorized")
        check_problem(await anonymous.get("/metrics"), 401, "unauthorized")


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


async def test_the_public_pages_are_rate_limited_per_client_address(
    tuned_api: httpx.AsyncClient,
) -> None:
    proxy = {"X-Forwarded-For": "203.0.113.7"}  # from a trusted proxy (loopback)
    async with client_of(tuned_api) as anonymous:
        answers = [(await anonymous.get("/u/no-token", headers=proxy)).status_code for _ in "abc"]
        assert answers == [404, 404, 404]
        limited = await anonymous.post("/p/no-token", headers=proxy)
        assert limited.status_code == 429  # the pages' own HTML page (test_public_page_limits)
        assert limited.headers["content-type"].startswith("text/html")
        assert 1 <= int(limited.headers["retry-after"]) <= 20  # 3 a minute: one each 20 s
        other = await anonymous.get("/u/no-token", headers={"X-Forwarded-For": "203.0.113.8"})
        assert other.status_code == 404
        assert (await anonymous.get("/metrics")).status_code == 200  # LEDGER_METRICS_PUBLIC
    # the API routes are not rate limited
    purposes = [(await tuned_api.get("/v1/purposes")).status_code for _ in range(5)]
    assert purposes == [200] * 5
