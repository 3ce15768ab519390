"""Bounded cost for any input, against the real API: oversized request targets and headers are
refused before the key check, long subject ids and repeated parameters get a 4xx at once,
a JSON body nested 32,000 deep is a 400, and the API keeps answering meanwhile. The API runs
with a concurrency limit, and its pool gives up on a connection or a statement in time."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from services.config import Settings
from tests.conftest import make_settings, running_api, wait_until
from tests.integration.test_log_hygiene import production_api
from tests.servers import Servers

pytestmark = pytest.mark.integration

DECISION = "/v1/decision?purpose=newsletter&channel=email"
GRANT = {"purpose": "newsletter", "channel": "email"}
PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
async def bounded_api(module_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with running_api(module_settings) as client:
        yield client


@pytest.fixture
async def anonymous(bounded_api: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    """A client that sends no API key."""
    async with httpx.AsyncClient(base_url=bounded_api.base_url, timeout=30) as client:
        yield client


def problem(answer: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text[:300]
    assert answer.headers["content-type"] == PROBLEM
    body: dict[str, Any] = answer.json()
    assert body["type"] == f"urn:consent-ledger:problem:{kind}"
    assert body["http_request_id"] == answer.headers["x-request-id"]
    return body


def field_problem(answer: httpx.Response, field: str, detail: str) -> None:
    body = problem(answer, 422, "invalid-request")
    assert [(e["field"], e["detail"][: len(detail)]) for e in body["errors"]] == [(field, detail)]


def subject_query(length: int) -> str:
    return f"{DECISION}&subject_id={'a' * length}"


def consents_path(length: int) -> str:
    return f"/v1/subjects/{'a' * length}/consents"


def batch_body(ids: int, length: int) -> bytes:
    return json.dumps({**GRANT, "subjects": ["a" * length] * ids}).encode()


async def test_a_long_subject_id_in_a_query(bounded_api: httpx.AsyncClient) -> None:
    body = problem(await bounded_api.get(subject_query(60_000)), 414, "uri-too-long")
    assert body["detail"].startswith("the query string is 60")
    assert [e["field"] for e in body["errors"]] == ["subject_id"]
    answer = await bounded_api.get(subject_query(8000))
    field_problem(answer, "subject_id", "is 8000 characters long; must be 1-128")


async def test_a_long_subject_id_in_a_path(bounded_api: httpx.AsyncClient) -> None:
    body = problem(await bounded_api.post(consents_path(60_000), json=GRANT), 414, "uri-too-long")
    assert body["detail"].startswith("the path is 60")
    answer = await bounded_api.post(consents_path(8000), json=GRANT)
    field_problem(answer, "subject_id", "is 8000 characters long; must be 1-128")


async def test_long_subject_ids_in_a_batch(bounded_api: httpx.AsyncClient) -> None:
    headers = {"content-type": "application/json"}
    answer = await bounded_api.post(
        "/v1/decisions/batch", content=batch_body(1, 60_000), headers=headers
    )
    field_problem(answer, "subjects.0", "is 60000 characters long; must be 1-128")
    # as many as fit in the 16 MiB body: each refused for its length alone
    answer = await bounded_api.post(
        "/v1/decisions/batch", content=batch_body(270, 60_000), headers=headers
    )
    body = problem(answer, 422, "invalid-request")
    assert len(body["errors"]) == 11
    assert body["errors"][-1]["detail"] == "270 entries are invalid; the first 10 are listed"


async def test_repeated_query_parameters(bounded_api: httpx.AsyncClient) -> None:
    problem(await bounded_api.get(DECISION + "&a=" * 10_000), 414, "uri-too-long")
    answer = await bounded_api.get(DECISION + "&a=" * 2000)
    field_problem(answer, "a", "is given more than once")


@pytest.mark.parametrize(
    ("path", "headers", "status", "kind"),
    [
        pytest.param(subject_query(9000), {}, 414, "uri-too-long", id="query"),
        pytest.param(f"/v1/subjects/{'a' * 9000}/consent", {}, 414, "uri-too-long", id="path"),
        pytest.param(DECISION, {"x-big": "b" * 17_000}, 431, "headers-too-large", id="one-header"),
        pytest.param(
            DECISION,
            {f"x-h{i}": "v" * 10 for i in range(1200)},
            431,
            "headers-too-large",
            id="many-headers",
        ),
    ],
)
async def test_oversized_requests_are_refused_before_the_key_check(
    anonymous: httpx.AsyncClient, path: str, headers: dict[str, str], status: int, kind: str
) -> None:
    problem(await anonymous.get(path, headers=headers), status, kind)
    # the same client without the excess is asked for a key
    problem(await anonymous.get(DECISION), 401, "unauthorized")


async def test_a_json_body_nested_32000_deep_is_a_400(bounded_api: httpx.AsyncClient) -> None:
    headers = {"content-type": "application/json"}
    path = "/v1/subjects/crm:1/consents"
    for target, body in ((path, b"[" * 32_000), ("/v1/decisions/batch", b"[" * 70_000)):
        answer = await bounded_api.post(target, content=body, headers=headers)
        detail = problem(answer, 400, "malformed-json")["detail"]
        assert detail == "the body nests arrays and objects too deeply"
    answer = await bounded_api.post(path, content=b'{"n": ' + b"9" * 5000 + b"}", headers=headers)
    problem(answer, 400, "malformed-json")


async def test_the_api_answers_others_while_expensive_requests_are_in_flight(
    bounded_api: httpx.AsyncClient,
) -> None:
    """Every costly request of the tests above at once, with a health check before and after
    them: all are answered as they should be. (Before, each 60,000-character id held the event
    loop for about 10 s, long enough for the API's key copy to go stale: the requests behind
    them got 503.)"""
    json_headers = {"content-type": "application/json"}
    batch = batch_body(270, 60_000)
    costly = [
        *(bounded_api.get(subject_query(8000)) for _ in range(4)),
        *(bounded_api.post(consents_path(8000), json=GRANT) for _ in range(4)),
        *(bounded_api.get(subject_query(60_000)) for _ in range(2)),
        *(
            bounded_api.post("/v1/decisions/batch", content=batch, headers=json_headers)
            for _ in range(2)
        ),
        bounded_api.get(DECISION + "&a=" * 2000),
        bounded_api.post(
            "/v1/subjects/crm:1/consents", content=b"[" * 32_000, headers=json_headers
        ),
    ]
    health = bounded_api.get("/healthz")
    answers = await asyncio.gather(health, *costly, bounded_api.get("/healthz"))
    assert [a.status_code for a in answers] == (
        [200] + [422] * 8 + [414] * 2 + [422] * 3 + [400] + [200]
    )


async def test_past_the_concurrency_limit_new_connections_get_503(real_servers: Servers) -> None:
    """uvicorn counts open connections against LEDGER_API_CONCURRENCY_LIMIT (the one asking
    included), so with a limit of 3 the third connection open at once is refused."""
    settings = await make_settings(real_servers, LEDGER_API_CONCURRENCY_LIMIT="3")
    async with production_api(settings) as first, contextlib.AsyncExitStack() as stack:
        url = first.base_url
        second = await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=30))
        for client in (first, second):
            assert (await client.get("/healthz")).status_code == 200
        async with httpx.AsyncClient(base_url=url, timeout=30) as third:
            refused = await third.get("/healthz")
        assert (refused.status_code, refused.text) == (503, "Service Unavailable")
        await second.aclose()

        async def a_new_connection_is_served() -> bool:
            async with httpx.AsyncClient(base_url=url, timeout=30) as another:
                return (await another.get("/healthz")).status_code == 200

        await wait_until(a_new_connection_is_served, 30, "a connection below the limit")


@contextlib.asynccontextmanager
async def locked_notices(settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    """The notices table locked against readers until the block ends."""
    conn = await asyncpg.connect(settings.database_url)
    try:
        async with conn.transaction():
            await conn.execute("LOCK TABLE notices IN ACCESS EXCLUSIVE MODE")
            yield conn
    finally:
        await conn.close()


async def waiting_for_the_lock(conn: asyncpg.Connection) -> int:
    """Backends waiting for the lock on notices (pg_locks: pg_stat_activity is a snapshot
    taken once per transaction, and the lock's transaction is still open)."""
    found = await conn.fetchval(
        "SELECT count(*) FROM pg_locks WHERE relation = 'notices'::regclass AND NOT granted"
    )
    return int(found)


async def test_a_request_that_gets_no_connection_in_time_answers_503(
    real_servers: Servers,
) -> None:
    """Ten requests hold the pool's ten connections, blocked on a lock; the eleventh waits
    LEDGER_DB_ACQUIRE_TIMEOUT_MS for one and answers 503 instead of waiting on."""
    settings = await make_settings(
        real_servers, LEDGER_DB_ACQUIRE_TIMEOUT_MS="2000", LEDGER_API_KEY_REFRESH_S="600"
    )
    async with running_api(settings) as client:
        async with locked_notices(settings) as conn:
            held = [asyncio.create_task(client.get("/v1/notices")) for _ in range(10)]

            async def all_blocked() -> bool:
                return await waiting_for_the_lock(conn) == 10

            await wait_until(all_blocked, 30, "ten requests to hold the pool's connections")
            body = problem(await client.get("/v1/notices"), 503, "unavailable")
            assert body["detail"] == "a backing service is unavailable; retry shortly"
        assert [(await task).status_code for task in held] == [200] * 10
        assert (await client.get("/v1/notices")).status_code == 200


async def test_a_statement_past_the_statement_timeout_answers_503(
    real_servers: Servers,
) -> None:
    settings = await make_settings(real_servers, LEDGER_DB_STATEMENT_TIMEOUT_MS="300")
    async with running_api(settings) as client:
        async with locked_notices(settings):
            body = problem(await client.get("/v1/notices"), 503, "unavailable")
            assert body["detail"] == "a backing service is unavailable; retry shortly"
        assert (await client.get("/v1/notices")).status_code == 200
