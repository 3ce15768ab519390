"""An audience stream against the real servers, held after its first row by the test: a client
that leaves mid-stream gives its PostgreSQL connection back to the pool (not closed, rolled
back), and while a stream waits the API goes on answering other requests. The stream limits
(services/http/bounded_stream.py): past LEDGER_AUDIENCE_MAX_STREAMS held streams a pull is
refused with 503, a stream is cut at its deadline, and a client that stops reading is cut at
the idle deadline; each cut frees the connection and is recorded in audience_exports."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import AsyncExitStack, aclosing
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
    """Holds every audience read after its first chunk (of one row) until `go` is set;
    `held` counts the reads waiting."""

    reached: asyncio.Event = field(default_factory=asyncio.Event)
    go: asyncio.Event = field(default_factory=asyncio.Event)
    held: int = 0


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
                    held.held += 1
                    try:
                        await held.go.wait()
                    finally:
                        held.held -= 1

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


@contextlib.asynccontextmanager
async def serving(real_servers: Servers, **overrides: str) -> AsyncIterator[Served]:
    """The API on a real socket with its Ledger at hand (for its pool), three granted subjects."""
    settings = await make_settings(real_servers, LEDGER_PORT=str(free_port()), **overrides)
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


@pytest.fixture
async def served_api(real_servers: Servers) -> AsyncIterator[Served]:
    async with serving(real_servers) as api:
        yield api


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
    caplog.set_level(logging.INFO, logger="services.api.audience_exports")
    writer.close()  # the client leaves; the stream never goes on

    await wait_until(quiet, 10, "the stream's connection to be back in the pool")
    assert ledger.pool.get_size() == size  # released and rolled back, not closed
    async with ledger.pool.acquire() as conn:
        assert not conn.is_in_transaction()
    exported = [r for r in caplog.records if r.getMessage() == "audience exported"]
    assert [r.__dict__["fields"]["complete"] for r in exported] == [False]
    assert not gate.go.is_set()
    await wait_until(lambda: ended_as(ledger, "cut"), 10, "the export's end to be recorded")
    assert (await last_export(ledger))["cut_reason"] == "cancelled"


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


async def last_export(ledger: Ledger) -> asyncpg.Record:
    row = await ledger.pool.fetchrow("SELECT * FROM audience_exports ORDER BY started_at DESC")
    assert row is not None
    return row


async def ended_as(ledger: Ledger, outcome: str) -> bool:
    return bool((await last_export(ledger))["outcome"] == outcome)


def request_bytes(settings: Settings, query: str) -> bytes:
    auth = ADMIN_HEADERS["Authorization"]
    return (
        f"GET /v1/audiences?{query} HTTP/1.1\r\n"
        f"Host: {settings.host}\r\nAuthorization: {auth}\r\n\r\n"
    ).encode()


async def test_streams_past_the_limit_are_refused_until_one_ends(
    real_servers: Servers, gate: Gate
) -> None:
    async with serving(real_servers, LEDGER_AUDIENCE_MAX_STREAMS="2") as api:
        query = f"/v1/audiences?{QUERY}&min_token={api.token}"
        async with AsyncExitStack() as streams:
            held = [await streams.enter_async_context(api.client.stream("GET", query))]
            held.append(await streams.enter_async_context(api.client.stream("GET", query)))
            assert [a.status_code for a in held] == [200, 200]

            async def both_held() -> bool:
                return gate.held == 2

            await wait_until(both_held, 10, "two streams to be held")
            refused = await api.client.get(query)
            assert refused.status_code == 503, refused.text
            assert refused.headers["content-type"] == "application/problem+json"
            assert int(refused.headers["retry-after"]) > 0
            assert busy(api.ledger) == 2  # the refused pull took no connection
            gate.go.set()
            for answer in held:  # both read to their end
                assert '"allowed": 3' in [line async for line in answer.aiter_lines()][-1]
        after = await api.client.get(query)
        assert after.status_code == 200, after.text
        assert '"allowed": 3' in after.text.splitlines()[-1]


async def test_a_stream_is_cut_at_its_deadline(real_servers: Servers, gate: Gate) -> None:
    async with serving(real_servers, LEDGER_AUDIENCE_DEADLINE_S="2") as api:
        query = f"/v1/audiences?{QUERY}&min_token={api.token}"
        async with api.client.stream("GET", query) as answer:
            assert answer.status_code == 200
            with pytest.raises(httpx.RemoteProtocolError):
                async for _ in answer.aiter_lines():
                    pass  # the gate holds the stream past its deadline: no end
        assert not gate.go.is_set()

        async def recorded() -> bool:
            return await ended_as(api.ledger, "cut")

        await wait_until(recorded, 10, "the cut to be recorded")
        assert (await last_export(api.ledger))["cut_reason"] == "deadline"
        await wait_until(lambda: idle_pool(api.ledger), 10, "the connection to come back")


async def idle_pool(ledger: Ledger) -> bool:
    return busy(ledger) == 0


@pytest.fixture
def endless(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every audience read goes on for ever: its first real chunk, then chunks of 5,000 made-up
    subjects with the first row's (granted) pattern."""
    real = audiences.everyone

    async def everyone(
        conn: asyncpg.Connection, **options: Any
    ) -> AsyncGenerator[list[tuple[str, str]], None]:
        async with aclosing(real(conn, **options)) as chunks:
            first = await anext(chunks)
        yield first
        pattern, n = first[0][1], 0
        while True:
            yield [(f"st-made-{n + i:09d}", pattern) for i in range(5000)]
            n += 5000

    monkeypatch.setattr(audiences, "everyone", everyone)


@pytest.mark.usefixtures("endless")
async def test_a_client_that_stops_reading_is_cut_at_the_idle_deadline(
    real_servers: Servers,
) -> None:
    overrides = {"LEDGER_AUDIENCE_IDLE_S": "1", "LEDGER_AUDIENCE_MAX_STREAMS": "1"}
    async with serving(real_servers, **overrides) as api:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (api.settings.host, api.settings.port))
        reader, writer = await asyncio.open_connection(sock=sock, limit=1 << 16)
        writer.write(request_bytes(api.settings, f"{QUERY}&min_token={api.token}"))
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        # the client reads nothing more: the server's buffers fill and a chunk waits

        async def recorded() -> bool:
            return await ended_as(api.ledger, "cut")

        await wait_until(recorded, 60, "the stalled stream to be cut")
        export = await last_export(api.ledger)
        assert export["cut_reason"] == "idle"
        await wait_until(lambda: idle_pool(api.ledger), 10, "the connection to come back")
        # the slot is free again: another pull is served while the stalled client is still there
        async with api.client.stream("GET", f"/v1/audiences?{QUERY}") as other:
            assert other.status_code == 200
        # the stalled client, reading on, finds the transfer broken off: no last chunk
        rest = await asyncio.wait_for(reader.read(), 60)  # to the end of the connection
        assert not rest.endswith(b"0\r\n\r\n")
        writer.close()
