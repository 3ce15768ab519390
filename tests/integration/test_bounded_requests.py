"""Bounded cost against the real API and PostgreSQL: the API runs with a concurrency limit, and
its pool gives up on a connection or a statement in time. The bounds on the input itself (the
request target, the headers, long ids, deep JSON) are checked in-process:
tests/unit/services/api/test_bounded_requests.py."""

from __future__ import annotations

import asyncio
import contextlib
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

PROBLEM = "application/problem+json"


def problem(answer: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text[:300]
    assert answer.headers["content-type"] == PROBLEM
    body: dict[str, Any] = answer.json()
    assert body["type"] == f"urn:consent-ledger:problem:{kind}"
    assert body["http_request_id"] == answer.headers["x-request-id"]
    return body


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
