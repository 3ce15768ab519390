"""For the dispatcher's tests: a receiving HTTP server on a loopback port whose answers the test
controls, events appended straight to the topic (MACed as the ledger's writer does), a
subscription row, and the dispatcher's parts run in the test's loop."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import uvicorn
from standardwebhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from schemas import events as ev
from schemas.codec import default_codec, kafka_headers
from schemas.events import Event, Source
from services.bootstrap import database_connector
from services.config import Settings
from services.db_pool import open_pool
from services.identity import webhook_secrets
from services.identity.keystore import DataKeys
from services.ledger import kafka_clients
from services.ledger.kafka_clients import new_producer
from services.ledger.record_producer import writer_macs
from services.stack.embedded import free_port
from services.webhooks import erasure_capture
from services.webhooks.deliverer import Deliverer, DelivererOptions
from services.webhooks.delivery_identifiers import DeliveryIdentifiers
from services.webhooks.erasure_capture import Identifier
from services.webhooks.fanout import FanoutReader
from services.webhooks.sending import AddressRules, Sender
from tests.conftest import wait_until
from tests.writer_macs import sealed

#: what the receiver answers a request: a status, or None to hang until released
Answer = Callable[["Received"], Awaitable[int]]


@dataclass(frozen=True, slots=True)
class Received:
    webhook_id: str
    timestamp: str
    signature: str
    body: bytes

    @property
    def payload(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.body)
        return value


async def ok(_: Received) -> int:
    return 204


@dataclass
class Receiver:
    """A real HTTP server; every request is kept, answered by `answer`."""

    port: int
    answer: Answer = ok
    received: list[Received] = field(default_factory=list)
    #: the deliveries answered with a 2xx, in the order they were answered
    acknowledged: list[Received] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}/hook"

    async def handle(self, request: Request) -> Response:
        got = Received(
            request.headers["webhook-id"],
            request.headers["webhook-timestamp"],
            request.headers["webhook-signature"],
            await request.body(),
        )
        self.received.append(got)
        status = await self.answer(got)
        if 200 <= status < 300:
            self.acknowledged.append(got)
        return Response(status_code=status)

    def verified(self, secret: str) -> list[dict[str, Any]]:
        """Every received payload, each verified by the Standard Webhooks library."""
        hook = Webhook(secret)
        out = []
        for r in self.received:
            headers = {
                "webhook-id": r.webhook_id,
                "webhook-timestamp": r.timestamp,
                "webhook-signature": r.signature,
            }
            out.append(hook.verify(r.body, headers))
        return out


@contextlib.asynccontextmanager
async def receiving(answer: Answer = ok, port: int | None = None) -> AsyncIterator[Receiver]:
    """A receiver on `port` (None: a free one)."""
    receiver = Receiver(free_port() if port is None else port, answer)
    app = Starlette(routes=[Route("/hook", receiver.handle, methods=["POST"])])
    config = uvicorn.Config(
        app, host="127.0.0.1", port=receiver.port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())

    async def started() -> bool:
        if task.done():
            task.result()
        return bool(server.started)

    try:
        await wait_until(started, 30, "the receiver to start")
        yield receiver
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


def withdrawal(subject_id: str) -> Event:
    now = datetime.now(UTC)
    return Event(
        ev.CONSENT_WITHDRAWN,
        uuid.uuid4(),
        subject_id,
        now,
        now,
        Source(method="api"),
        data={"purpose": "newsletter", "channel": None},
    )


async def append(settings: Settings, events: Sequence[Event]) -> None:
    """Append events in order, keyed by subject as the ledger's publisher keys them."""
    codec = default_codec()
    producer = new_producer(settings.kafka, acks="all")
    await producer.start()
    try:
        for event in events:
            key, value = event.subject_id.encode(), codec.encode(event)
            await producer.send_and_wait(
                settings.topic, value, key=key, headers=sealed(key, value, kafka_headers(event))
            )
    finally:
        await producer.stop()


async def subscribe(
    conn: asyncpg.Connection,
    url: str,
    events: Sequence[str] = (ev.CONSENT_WITHDRAWN,),
    *,
    created_at: datetime | None = None,
) -> uuid.UUID:
    sid = uuid.uuid4()
    await conn.execute(
        "INSERT INTO webhook_subscriptions (id, url, event_types, created_at)"
        " VALUES ($1, $2, $3, $4)",
        sid,
        url,
        list(events),
        created_at or datetime.now(UTC) - timedelta(minutes=1),
    )
    return sid


@dataclass
class Dispatching:
    reader: FanoutReader
    deliverer: Deliverer


@contextlib.asynccontextmanager
async def dispatching(
    settings: Settings,
    secrets: Callable[[uuid.UUID], Awaitable[list[str]]],
    *,
    window: timedelta = timedelta(hours=24),
    timeout_s: float = 5,
    concurrency: int = 4,
    allow_loopback: bool = True,
) -> AsyncIterator[Dispatching]:
    """The dispatcher's fan-out and delivery, wired as services/bootstrap.py wires them (the
    erasure captures opened and forgotten alike) but with the test's secrets, retry window and
    timeout."""
    pool = await open_pool(
        settings.database_url,
        min_size=1,
        max_size=10,
        acquire_timeout_ms=5000,
        statement_timeout_ms=30000,
    )
    sender = Sender(AddressRules(allow_loopback, False), timeout_s, max_connections=concurrency)
    master = settings.secrets().master

    async def captured(event_id: uuid.UUID) -> list[Identifier] | None:
        return await erasure_capture.open_capture(pool, master, event_id)

    async def forget(event_id: uuid.UUID) -> None:
        await erasure_capture.forget(pool, event_id)

    deliverer = Deliverer(
        pool=pool,
        sender=sender,
        secrets=secrets,
        identifiers=DeliveryIdentifiers(pool, DataKeys(pool, master), settings.topic, captured),
        forget_capture=forget,
        options=DelivererOptions(concurrency, window),
    )
    reader = FanoutReader(
        new_consumer=functools.partial(kafka_clients.new_consumer, settings.kafka),
        connect=database_connector(settings),
        topic=settings.topic,
        group_id=settings.webhook_group,
        codec=default_codec(),
        macs=writer_macs(settings.writer_key_ring()),
        on_created=deliverer.wake.set,
        session_timeout_ms=settings.kafka_session_timeout_ms,
    )
    stop = asyncio.Event()
    tasks = [asyncio.create_task(reader.run(stop)), asyncio.create_task(deliverer.run(stop))]
    try:
        yield Dispatching(reader, deliverer)
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 60)
        await sender.close()
        await pool.close()


async def statuses(conn: asyncpg.Connection, sid: uuid.UUID) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT status, count(*) AS n FROM webhook_deliveries WHERE subscription_id = $1"
        " GROUP BY status",
        sid,
    )
    return {r["status"]: r["n"] for r in rows}


def stored_secrets(settings: Settings) -> Callable[[uuid.UUID], Awaitable[list[str]]]:
    """The secrets that sign a subscription now, as the dispatcher reads them."""
    master = settings.secrets().master

    async def of(subscription_id: uuid.UUID) -> list[str]:
        conn = await asyncpg.connect(settings.database_url)
        try:
            return await webhook_secrets.signing_secrets(
                conn, master, subscription_id, datetime.now(UTC)
            )
        finally:
            await conn.close()

    return of


async def api_subscribe(
    api: httpx.AsyncClient, receiver: Receiver, events: list[str], **extra: Any
) -> dict[str, Any]:
    """A subscription made through the admin API (its secret in the answer)."""
    made = await api.post("/v1/webhooks", json={"url": receiver.url, "events": events, **extra})
    assert made.status_code == 201, made.text
    hook: dict[str, Any] = made.json()
    return hook


async def record(api: httpx.AsyncClient, subject: str, command: str, body: Any) -> str:
    """A command through the API; its event id."""
    answer = await api.post(f"/v1/subjects/{subject}/{command}", json=body)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["event_id"])
