"""The dispatcher's delivery loop against the real broker, PostgreSQL and real receiving HTTP
servers: a retry waiting keeps the loop idle, anything raised while building or sending is a
recorded attempt, a hanging receiver at full concurrency delays no other, two dispatchers share
a subscription without sending a delivery twice or out of order, and a name that rebinds to a
refused address between attempts reaches nothing."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import asyncpg
import httpcore
import pytest

from schemas.codec import default_codec
from services.config import Settings
from services.db_pool import open_pool
from services.identity.keystore import DataKeys
from services.ledger import kafka_clients
from services.ledger.record_producer import writer_macs
from services.webhooks import deliverer as deliverer_module
from services.webhooks.deliverer import POLL_S, Deliverer, DelivererOptions
from services.webhooks.delivery_identifiers import DeliveryIdentifiers
from services.webhooks.erasure_capture import Identifier
from services.webhooks.fanout import FanoutReader
from services.webhooks.sending import AddressRules, Resolver, Sender
from services.webhooks.signing import new_secret
from tests.conftest import make_settings, wait_until
from tests.integration.webhook_support import (
    Received,
    append,
    receiving,
    statuses,
    subscribe,
    withdrawal,
)
from tests.servers import Servers

pytestmark = pytest.mark.integration

SECRET = new_secret()


async def one_secret(_: uuid.UUID) -> list[str]:
    return [SECRET]


async def no_capture(_: uuid.UUID) -> list[Identifier]:
    return []


async def keep_capture(_: uuid.UUID) -> None:
    return None


@pytest.fixture
async def hook_settings(real_servers: Servers) -> Settings:
    return await make_settings(real_servers, LEDGER_WEBHOOK_GROUP=f"loop-{uuid.uuid4().hex[:8]}")


@pytest.fixture
async def conn(hook_settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    c = await asyncpg.connect(hook_settings.database_url)
    try:
        yield c
    finally:
        await c.close()


@contextlib.asynccontextmanager
async def delivering(
    settings: Settings,
    secrets: Callable[[uuid.UUID], Any] = one_secret,
    *,
    dispatchers: int = 1,
    concurrency: int = 4,
    timeout_s: float = 5,
    window: timedelta = timedelta(hours=24),
    allow_loopback: bool = True,
    resolver: Resolver | None = None,
) -> AsyncIterator[list[Deliverer]]:
    """Fan-out and `dispatchers` deliverers, each with its own pool and HTTP client as separate
    dispatcher processes have, wired as services/bootstrap.py wires them."""
    stack = contextlib.AsyncExitStack()
    deliverers: list[Deliverer] = []
    for _ in range(dispatchers):
        pool = await open_pool(
            settings.database_url,
            min_size=1,
            max_size=10,
            acquire_timeout_ms=5000,
            statement_timeout_ms=30000,
        )
        stack.push_async_callback(pool.close)
        sender = Sender(AddressRules(allow_loopback, False), timeout_s, concurrency, resolver)
        stack.push_async_callback(sender.close)
        master = settings.secrets().master
        deliverers.append(
            Deliverer(
                pool=pool,
                sender=sender,
                secrets=secrets,
                identifiers=DeliveryIdentifiers(
                    pool, DataKeys(pool, master), settings.topic, no_capture
                ),
                forget_capture=keep_capture,
                options=DelivererOptions(concurrency, window),
            )
        )

    def woken() -> None:
        for d in deliverers:
            d.wake.set()

    reader = FanoutReader(
        new_consumer=functools.partial(kafka_clients.new_consumer, settings.kafka),
        connect=functools.partial(asyncpg.connect, settings.database_url),
        topic=settings.topic,
        group_id=settings.webhook_group,
        codec=default_codec(),
        macs=writer_macs(settings.writer_key_ring()),
        on_created=woken,
        session_timeout_ms=settings.kafka_session_timeout_ms,
    )
    stop = asyncio.Event()
    tasks = [asyncio.create_task(reader.run(stop))]
    tasks += [asyncio.create_task(d.run(stop)) for d in deliverers]
    async with stack:
        try:
            yield deliverers
        finally:
            stop.set()
            await asyncio.wait_for(asyncio.gather(*tasks), 60)


async def attempts_of(conn: asyncpg.Connection, event_id: uuid.UUID) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT a.outcome, a.error FROM webhook_attempts a JOIN webhook_deliveries d"
        " ON d.id = a.delivery_id WHERE d.event_id = $1 ORDER BY a.attempt",
        event_id,
    )


async def test_a_retry_waiting_keeps_the_loop_idle(
    hook_settings: Settings, conn: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A subject's second delivery queued behind a first that waits for its retry is not due:
    the loop looks for work a few times per poll interval, not continuously."""
    # the retries come at their ceilings (1 s, then 5 s): the wait is the data's, not a sleep
    monkeypatch.setattr(deliverer_module, "random", SimpleNamespace(random=lambda: 0.99))
    first, second = withdrawal("waiting"), withdrawal("waiting")

    async def answer(r: Received) -> int:
        failed = sum(x.payload["event_id"] == str(first.event_id) for x in receiver.received)
        return 500 if r.payload["event_id"] == str(first.event_id) and failed <= 2 else 200

    async with receiving(answer) as receiver:
        sid = await subscribe(conn, receiver.url)
        async with delivering(hook_settings) as [deliverer]:
            await append(hook_settings, [first, second])

            def tried(times: int) -> Callable[[], Any]:
                async def check() -> bool:
                    return len(await attempts_of(conn, first.event_id)) >= times

                return check

            await wait_until(tried(1), 60, "the first attempt")
            looked, since = deliverer.due_queries, time.monotonic()
            await wait_until(tried(3), 60, "two retries")
            looked, waited = deliverer.due_queries - looked, time.monotonic() - since

            async def all_done() -> bool:
                return await statuses(conn, sid) == {"succeeded": 2}

            await wait_until(all_done, 60, "both deliveries")
    # per poll interval: a round of the loop, one at a due time, one per wake-up, and a claim
    # or two per worker started for each retry
    assert looked <= 4 * (waited / POLL_S + 2) + 10 * 2, (looked, waited)
    order = [r.payload["event_id"] for r in receiver.received]
    assert order == [str(first.event_id)] * 3 + [str(second.event_id)]


async def test_what_raises_while_building_or_sending_is_a_recorded_attempt(
    hook_settings: Settings, conn: asyncpg.Connection
) -> None:
    """No secret to sign with (the subscription's first attempt) is a failed attempt on the
    retry schedule, not a stalled queue; a URL with a non-ASCII path (which httpcore would
    refuse with a TypeError) is sent in its canonical, percent-encoded form."""
    asked: list[uuid.UUID] = []

    async def secrets(sid: uuid.UUID) -> list[str]:
        asked.append(sid)
        return [] if asked.count(sid) == 1 else [SECRET]

    signed_late, later = withdrawal("unsigned"), withdrawal("unsigned")
    async with receiving() as receiver:
        sid = await subscribe(conn, receiver.url)
        async with delivering(hook_settings, secrets, window=timedelta(seconds=3)):
            await append(hook_settings, [signed_late, later])

            async def signed() -> bool:
                return await statuses(conn, sid) == {"succeeded": 2}

            await wait_until(signed, 60, "both deliveries")
            # a receiver whose URL has a non-ASCII path, from now on
            bad = await subscribe(
                conn, f"http://localhost:{receiver.port}/hook/\u00e4", created_at=datetime.now(UTC)
            )
            unsendable = withdrawal("unsendable")  # recorded after `bad` was created
            await append(hook_settings, [unsendable])

            async def parked() -> bool:
                return await statuses(conn, bad) == {"parked": 1}

            await wait_until(parked, 60, "the unsendable delivery parked")
    unsigned = await attempts_of(conn, signed_late.event_id)
    assert [a["outcome"] for a in unsigned] == ["failed", "succeeded"]
    assert "preparing the delivery failed: ValueError" in unsigned[0]["error"]
    assert [r.payload["event_id"] for r in receiver.received][:2] == [
        str(signed_late.event_id),
        str(later.event_id),
    ]
    tries = await conn.fetch(
        "SELECT a.outcome, a.error FROM webhook_attempts a JOIN webhook_deliveries d"
        " ON d.id = a.delivery_id WHERE d.subscription_id = $1 ORDER BY a.attempt",
        bad,
    )
    # its first attempt had no secret to sign with; the next ones went to /hook/%C3%A4,
    # which this receiver does not serve
    assert len(tries) >= 2 and {a["outcome"] for a in tries} == {"failed"}
    assert "preparing the delivery failed: ValueError" in tries[0]["error"]
    assert {a["error"] for a in tries[1:]} == {"answered 404"}
    assert await conn.fetchval(
        "SELECT failing_since IS NOT NULL FROM webhook_subscriptions WHERE id = $1", bad
    )


async def test_a_hanging_receiver_at_full_concurrency_delays_no_other(
    hook_settings: Settings, conn: asyncpg.Connection
) -> None:
    release = asyncio.Event()

    async def hang(_: Received) -> int:
        await release.wait()
        return 200

    events = [withdrawal(f"h-{i}") for i in range(8)]
    async with receiving(hang) as slow, receiving() as quick:
        await subscribe(conn, slow.url)
        await subscribe(conn, quick.url)
        async with delivering(hook_settings, concurrency=4, timeout_s=120):
            await append(hook_settings, events)

            async def quick_done() -> bool:
                return len(quick.acknowledged) == len(events)

            try:
                await wait_until(quick_done, 60, "the healthy receiver to get everything")
                # the hanging receiver holds every connection its subscription may use
                assert len(slow.received) == 4 and slow.acknowledged == []
            finally:
                release.set()

            async def slow_done() -> bool:
                return len(slow.acknowledged) == len(events)

            await wait_until(slow_done, 60, "the released receiver to get everything")


async def test_two_dispatchers_share_a_subscription(
    hook_settings: Settings, conn: asyncpg.Connection
) -> None:
    """Two dispatchers drain one subscription together (more in flight than one's
    concurrency), yet no delivery is sent twice and no subject has two in flight or out of
    log order."""
    busy: set[str] = set()
    overlaps: list[str] = []
    together = asyncio.Event()

    async def answer(r: Received) -> int:
        subject = r.payload["subject_id"]
        if subject in busy:
            overlaps.append(subject)
        busy.add(subject)
        try:
            if len(busy) > 4:  # more than one dispatcher's concurrency: both are sending
                together.set()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(10):
                    await together.wait()
            return 200
        finally:
            busy.discard(subject)

    events = [withdrawal(f"two-{i % 10}") for i in range(50)]
    async with receiving(answer) as receiver:
        sid = await subscribe(conn, receiver.url)
        async with delivering(hook_settings, dispatchers=2, concurrency=4, timeout_s=30) as ds:
            await append(hook_settings, events)

            async def all_done() -> bool:
                return await statuses(conn, sid) == {"succeeded": len(events)}

            await wait_until(all_done, 120, "every delivery")
    assert together.is_set() and all(d.sent > 0 for d in ds)
    assert overlaps == []
    ids = [r.webhook_id for r in receiver.received]
    assert len(ids) == len(set(ids)) == len(events)
    for i in range(10):
        sent = [str(e.event_id) for e in events if e.subject_id == f"two-{i}"]
        got = [r.payload["event_id"] for r in receiver.received]
        assert [g for g in got if g in sent] == sent


async def test_a_name_rebound_to_a_refused_address_reaches_nothing(
    hook_settings: Settings, conn: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The host resolves to a public address at the first attempt and to loopback (refused by
    the dispatcher's settings) at the next: that attempt is refused and nothing connects to
    the receiver listening there."""
    connections: list[object] = []

    async def accept(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    answers = iter(["1.1.1.1"])

    def lookup(host: str, p: int) -> list[tuple[Any, ...]]:
        address = next(answers, "127.0.0.1")
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, p))]

    dialled: list[str] = []
    connect = httpcore.AnyIOBackend.connect_tcp

    async def dial(self: httpcore.AnyIOBackend, host: str, *args: Any) -> Any:
        dialled.append(host)
        if host != "127.0.0.1":
            raise httpcore.ConnectError("no route from the test's machine")
        return await connect(self, host, *args)

    monkeypatch.setattr(httpcore.AnyIOBackend, "connect_tcp", dial)
    event = withdrawal("rebound")
    try:
        # an https URL with a public name passes check_url; only the addresses decide
        await subscribe(conn, f"https://hooks.example.net:{port}/hook")
        async with delivering(hook_settings, allow_loopback=False, resolver=Resolver(lookup)):
            await append(hook_settings, [event])

            async def refused_twice() -> bool:
                return len(await attempts_of(conn, event.event_id)) >= 2

            await wait_until(refused_twice, 60, "two attempts")
    finally:
        server.close()
        await server.wait_closed()
    first, second = (await attempts_of(conn, event.event_id))[:2]
    assert first["outcome"] == "refused" and "could not connect" in first["error"]
    assert second["outcome"] == "refused" and "may not reach: 127.0.0.1" in second["error"]
    assert dialled == ["1.1.1.1"] and connections == []
