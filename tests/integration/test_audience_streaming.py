"""An audience stream against the real servers, held after its first row by the test: a client
that leaves mid-stream gives its PostgreSQL connection back to the pool (not closed, rolled
back), and while a stream waits the API goes on answering other requests."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import pytest

from projections import audiences
from services.api.app import create_app
from services.bootstrap import Ledger, open_ledger
from services.config import Settings
from services.stack.embedded import free_port
from tests.conftest import ADMIN_HEADERS, make_settings, running_projector, wait_until
from tests.integration.served_api import served
from tests.servers import Servers

pytestmark = pytest.mark.integration

SUBJECTS = ("st-granted-1", "st-granted-2", "st-granted-3")
GRANT = {"purpose": "newsletter", "channel": "email"}
QUERY = "purpose=newsletter&channel=email&reasons=true"


@dataclass(slots=True)
class Gate:
    """Holds every audience read after its first chunk (of one row) until `go` is set."""

    reached: asyncio.Event = field(default_factory=asyncio.Event)
    go: asyncio.Event = field(default_factory=asyncio.Event)


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Gate:
    held, real = Gate(), audiences.everyone

    async def everyone(
        conn: asyncpg.Connection, **options: Any
    ) -> AsyncGenerator[list[tuple[str, str]], None]:
        async with aclosing(real(conn, **{**options, "chunk": 1})) as chunks:
            async for n, chunk in aenumerate(chunks):
                yield chunk
                if n == 0:
                    held.reached.set()
                    await held.go.wait()

    monkeypatch.setattr(audiences, "everyone", everyone)
    return held


async def aenumerate(
    chunks: AsyncIterator[list[tuple[str, str]]],
) -> AsyncIterator[tuple[int, list[tuple[str, str]]]]:
    n = 0
    async for chunk in chunks:
        yield n, chunk
        n += 1


@dataclass(frozen=True, slots=True)
class Served:
    client: httpx.AsyncClient
    ledger: Ledger
    settings: Settings
    token: str


@pytest.fixture
async def served_api(real_servers: Servers) -> AsyncIterator[Served]:
    """The API on a real socket with its Ledger at hand (for its pool), three granted subjects."""
    settings = await make_settings(real_servers, LEDGER_PORT=str(free_port()))
    made: list[Ledger] = []

    async def keep(s: Settings) -> Ledger:
        made.append(await open_ledger(s))
        return made[-1]

    base = f"http://{settings.host}:{settings.port}"
    async with (
        running_projector(settings),
        served(create_app(settings, keep), settings),
        httpx.AsyncClient(base_url=base, timeout=30, headers=ADMIN_HEADERS) as client,
    ):
        token = ""
        for subject in SUBJECTS:
            answer = await client.post(f"/v1/subjects/{subject}/consents", json=GRANT)
            assert answer.status_code == 201, answer.text
            token = answer.json()["token"]
        yield Served(client, made[0], settings, token)


def busy(ledger: Ledger) -> int:
    return ledger.pool.get_size() - ledger.pool.get_idle_size()


async def test_a_client_leaving_mid_stream_gives_the_connection_back(
    served_api: Served, gate: Gate, caplog: pytest.LogCaptureFixture
) -> None:
    ledger, settings = served_api.ledger, served_api.settings

    async def quiet() -> bool:
        return busy(ledger) == 0

    await wait_until(quiet, 10, "the API's pool to be idle")
    size = ledger.pool.get_size()
    reader, writer = await asyncio.open_connection(settings.host, settings.port)
    auth = ADMIN_HEADERS["Authorization"]
    writer.write(
        f"GET /v1/audiences?{QUERY}&min_token={served_api.token} HTTP/1.1\r\n"
        f"Host: {settings.host}\r\nAuthorization: {auth}\r\n\r\n".encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head

    async def held() -> bool:
        return gate.reached.is_set()

    await wait_until(held, 10, "the stream to reach its first row")
    assert busy(ledger) == 1  # the stream's snapshot holds one connection
    caplog.set_level(logging.INFO, logger="services.api.audiences")
    writer.close()  # the client leaves; the stream never goes on

    await wait_until(quiet, 10, "the stream's connection to be back in the pool")
    assert ledger.pool.get_size() == size  # released and rolled back, not closed
    async with ledger.pool.acquire() as conn:
        assert not conn.is_in_transaction()
    exported = [r for r in caplog.records if r.getMessage() == "audience exported"]
    assert [r.__dict__["fields"]["complete"] for r in exported] == [False]
    assert not gate.go.is_set()


async def test_the_api_answers_others_while_a_stream_waits(served_api: Served, gate: Gate) -> None:
    query = f"/v1/audiences?{QUERY}&min_token={served_api.token}"
    async with served_api.client.stream("GET", query) as answer:
        lines = answer.aiter_lines()
        first = await anext(lines)
        assert first.startswith('{"subject_id"')

        async def held() -> bool:
            return gate.reached.is_set()

        await wait_until(held, 10, "the stream to reach its first row")
        decision = await served_api.client.get(
            "/v1/decision", params={"subject_id": SUBJECTS[0], **GRANT}
        )
        assert decision.status_code == 200 and decision.json()["allowed"] is True
        gate.go.set()
        rest = [line async for line in lines if line]
    assert len([first, *rest[:-1]]) == len(SUBJECTS)
    assert '"allowed": 3' in rest[-1]
