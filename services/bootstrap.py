"""The one place that opens connections and producers, for each kind of process: the API's
`Ledger` (open_ledger; the importer uses it too), the projector process (open_projector), and
the webhook dispatcher (open_dispatcher), an operator command's own (operator_database,
operator_producer, operator_consumer). Everything
else receives what it uses; a part that needs a dedicated connection (LISTEN, an advisory lock,
a long transaction) is handed `connect_database` bound to the settings.
tests/unit/services/test_wiring.py parses the sources to hold that nothing else opens one.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, cast
from uuid import UUID

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from projections import erasure, subject_state
from projections.runner import ConsumerFactory, Projector
from schemas.codec import EventCodec, default_codec
from schemas.events import Actor
from services.config import Settings
from services.db_pool import open_pool
from services.identity import webhook_secrets
from services.identity.keystore import DataKeys
from services.identity.secrets import Secrets
from services.ledger import idempotency, kafka_clients
from services.ledger.append import append
from services.ledger.publisher import Publisher, make_producer
from services.ledger.record_producer import RecordProducer, writer_macs
from services.projector.checkpointer import Checkpointer
from services.projector.dead_letter_feed import DeadLetterFeed
from services.projector.outbox_publishing import PublishingSession
from services.projector.process import ProjectorProcess
from services.projector.state_feed import StateFeed
from services.reads.coalescer import Coalescer
from services.reads.notice_cache import NoticeCache
from services.reads.progress import ProjectionProgress
from services.reads.projection_health import ProjectionHealth
from services.reads.purpose_cache import PurposeCache
from services.rules.catalogue import Catalogue, load_catalogue
from services.rules.catalogue_events import FILE_ACTOR, PURPOSE_NAMESPACE, version_event
from services.rules.catalogue_history import TICK, PurposeVersion
from services.webhooks import erasure_capture
from services.webhooks.deliverer import Deliverer, DelivererOptions
from services.webhooks.delivery_identifiers import DeliveryIdentifiers
from services.webhooks.dispatcher_process import DispatcherProcess
from services.webhooks.erasure_capture import Identifier
from services.webhooks.fanout import FanoutReader
from services.webhooks.sending import AddressRules, Sender

#: opens a dedicated database connection; the caller closes it
Connect = Callable[[], Awaitable[asyncpg.Connection]]


async def connect_database(settings: Settings, **options: Any) -> asyncpg.Connection:
    """A connection of its own (asyncpg.connect keyword arguments in `options`)."""
    return await asyncpg.connect(settings.database_url, **options)


def database_connector(settings: Settings) -> Connect:
    """`connect_database` bound to the settings, for a part that opens its own connection."""
    return functools.partial(connect_database, settings)


def event_producer(settings: Settings) -> AIOKafkaProducer:
    """A producer (not started) with the ledger's acks, idempotence and produce timeout."""
    return make_producer(
        settings.kafka,
        idempotence=settings.kafka_idempotence,
        timeout_ms=settings.produce_timeout_ms,
    )


def consumer_factory(settings: Settings) -> ConsumerFactory:
    """Builds consumers of the settings' brokers with the options of each use."""
    return functools.partial(kafka_clients.new_consumer, settings.kafka)


# The API process


@dataclass(slots=True)
class Ledger:
    """Everything a request handler needs, opened once per process."""

    settings: Settings
    #: the purpose catalogue's versions, followed as the projector applies new ones
    purposes: PurposeCache
    codec: EventCodec
    pool: asyncpg.Pool
    publisher: Publisher
    progress: ProjectionProgress
    partitions: int
    secrets: Secrets
    data_keys: DataKeys
    health: ProjectionHealth
    notices: NoticeCache
    #: concurrent decisions' state reads, one statement per batch (services/reads/coalescer.py)
    states: Coalescer[tuple[str, int], subject_state.Loaded]
    #: concurrent commands' "is this subject erased?" checks, one statement per batch
    erased: Coalescer[str, bool]
    #: audience streams at once (LEDGER_AUDIENCE_MAX_STREAMS): each holds a pooled connection
    audience_streams: asyncio.Semaphore
    #: follows the purpose catalogue and seeds it (open_ledger starts it, close_ledger ends it)
    purpose_follower: asyncio.Task[None] | None = None

    @property
    def catalogue(self) -> Catalogue:
        """The catalogue in force now: what live decisions use."""
        return self.purposes.catalogue


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Pool connections are returned without asyncpg's reset query (a round trip per use):
    request handlers set no session state, take no advisory locks and LISTEN on nothing."""


async def _erased(pool: asyncpg.Pool, subject_ids: Sequence[str]) -> dict[str, bool]:
    found = await erasure.erased_among(pool, subject_ids)
    return {s: s in found for s in subject_ids}


async def open_ledger(settings: Settings) -> Ledger:
    catalogue = load_catalogue(settings.catalogue_file)
    secrets = settings.secrets()
    pool = await open_pool(
        settings.database_url,
        min_size=2,
        max_size=10,
        acquire_timeout_ms=settings.db_acquire_timeout_ms,
        statement_timeout_ms=settings.db_statement_timeout_ms,
        reset=_keep_session,
    )
    producer = event_producer(settings)
    try:
        # before any request: a retry of a request claimed before migration 0016 finds its key
        async with pool.acquire() as proxy:
            conn = cast(asyncpg.Connection, proxy)  # the pool's proxy is a connection to the stubs
            await idempotency.hash_legacy_keys(conn, secrets.blind_index_key)
        await producer.start()
        publisher = Publisher(
            producer,
            settings.topic,
            settings.produce_timeout_ms / 1000,
            writer_macs(secrets.writers),
        )
        partitions = await publisher.partition_count()
        progress = ProjectionProgress(pool, settings.topic)
        await progress.start(database_connector(settings))
    except BaseException:
        await producer.stop()
        await pool.close()
        raise
    ledger = Ledger(
        settings,
        PurposeCache(pool, catalogue),
        default_codec(),
        pool,
        publisher,
        progress,
        partitions,
        secrets,
        DataKeys(pool, secrets.master),
        ProjectionHealth(
            pool, settings.topic, partitions, settings.max_staleness_ms, secrets.writers.current_id
        ),
        NoticeCache(pool),
        Coalescer(partial(subject_state.load_many, pool, settings.topic)),
        Coalescer(partial(_erased, pool)),
        asyncio.Semaphore(settings.audience_max_streams),
    )
    seed = partial(record_purpose_versions, ledger, FILE_ACTOR)
    # before serving: a first start's catalogue is in the log and projected (within
    # LEDGER_READ_WAIT_MS), so its first decisions do not meet a projection behind its seeds
    with contextlib.suppress(Exception):  # a server is away: `follow` tries again
        await ledger.purposes.record_missing(seed)
    ledger.purpose_follower = asyncio.create_task(ledger.purposes.follow(seed))
    return ledger


async def record_purpose_versions(
    ledger: Ledger, actor: Actor, versions: Sequence[PurposeVersion], reason: str | None = None
) -> list[tuple[int, int]]:
    """Put purpose versions in the log and wait until they are projected on every partition
    they landed on, so a reload sees them (`reason`: a retirement's). Their event ids derive
    from their content, and so does the idempotency key: the same versions sent again (a seed
    retried while the projector lags) are answered from the first send's ack, never a second
    record on the topic."""
    now = datetime.now(UTC)
    # each a microsecond after the one before: the log's order of versions in force at one
    # instant (the seeds, all since the epoch) is by when they were recorded, the given order
    events = [version_event(v, now + i * TICK, actor, reason) for i, v in enumerate(versions)]
    ids = ",".join(sorted(str(e.event_id) for e in events))
    appended = await append(
        events,
        key=f"purpose-versions:{uuid.uuid5(PURPOSE_NAMESPACE, ids)}",
        digest=hashlib.sha256(ids.encode()).digest(),
        subject_id=events[0].subject_id,
        codec=ledger.codec,
        pool=ledger.pool,
        publisher=ledger.publisher,
        health=ledger.health,
        erased=ledger.erased,
        hash_key=ledger.secrets.blind_index_key,
    )
    last: dict[int, int] = {}
    for partition, offset in appended.positions:
        last[partition] = max(offset, last.get(partition, -1))
    deadline = time.monotonic() + ledger.settings.read_wait_ms / 1000
    for partition, offset in sorted(last.items()):
        remaining = max(0.0, deadline - time.monotonic())
        if not await ledger.progress.wait_for(partition, offset + 1, remaining):
            break  # not projected yet: the caller reloads what is, and a retry is a replay
    return appended.positions


async def close_ledger(ledger: Ledger) -> None:
    if ledger.purpose_follower is not None:
        ledger.purpose_follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ledger.purpose_follower
    await ledger.states.close()
    await ledger.erased.close()
    with contextlib.suppress(Exception):
        await ledger.progress.close()
    with contextlib.suppress(Exception):
        await ledger.publisher.producer.stop()
    await ledger.pool.close()


# The projector process


@contextlib.asynccontextmanager
async def publishing_session(
    settings: Settings,
) -> AsyncIterator[tuple[asyncpg.Connection, RecordProducer]]:
    """A publisher's session: a database connection and a started producer (acks=all) that
    MACs every record under the writer keys, both closed on the way out."""
    macs = writer_macs(settings.writer_key_ring())
    conn = await connect_database(settings)
    producer = event_producer(settings)
    try:
        await producer.start()
        yield conn, RecordProducer(producer, macs)
    finally:
        with contextlib.suppress(Exception):
            await producer.stop()
        with contextlib.suppress(Exception):
            await conn.close(timeout=2)


def publishing_sessions(settings: Settings) -> PublishingSession:
    """`publishing_session` bound to the settings, for the projector's publishers."""
    return functools.partial(publishing_session, settings)


def open_projector(settings: Settings) -> ProjectorProcess:
    """The projector and its three publishers, each given how to open its connections (call
    it in the event loop that runs them: the consumer is made here)."""
    sessions = publishing_sessions(settings)
    projector = Projector(
        new_consumer=consumer_factory(settings),
        connect=database_connector(settings),
        topic=settings.topic,
        group_id=settings.projector_group,
        codec=default_codec(),
        macs=writer_macs(settings.writer_key_ring()),
        batch_size=settings.projector_batch,
        session_timeout_ms=settings.kafka_session_timeout_ms,
        fetch_wait_ms=settings.projector_fetch_wait_ms,
    )
    return ProjectorProcess(
        settings,
        projector,
        StateFeed(settings, load_catalogue(settings.catalogue_file), sessions=sessions),
        DeadLetterFeed(settings, sessions=sessions),
        Checkpointer(settings, sessions=sessions),
    )


# The webhook dispatcher process


async def open_dispatcher(settings: Settings) -> DispatcherProcess:
    """Fan-out (its own consumer and connection), the deliveries' workers (a pool, the HTTP
    client) and what they read sealed; call it in the loop that runs them."""
    master = settings.secrets().master
    pool = await open_pool(
        settings.database_url,
        min_size=1,
        max_size=10,
        acquire_timeout_ms=settings.db_acquire_timeout_ms,
        statement_timeout_ms=settings.db_statement_timeout_ms,
    )

    async def secrets_of(subscription_id: UUID) -> list[str]:
        return await webhook_secrets.signing_secrets(
            pool, master, subscription_id, datetime.now(UTC)
        )

    async def captured(event_id: UUID) -> list[Identifier] | None:
        return await erasure_capture.open_capture(pool, master, event_id)

    async def forget(event_id: UUID) -> None:
        await erasure_capture.forget(pool, event_id)

    sender = Sender(
        AddressRules(settings.webhook_allow_loopback, settings.webhook_allow_private),
        settings.webhook_timeout_s,
        max_connections=settings.webhook_concurrency,
    )
    deliverer = Deliverer(
        pool=pool,
        sender=sender,
        secrets=secrets_of,
        identifiers=DeliveryIdentifiers(pool, DataKeys(pool, master), settings.topic, captured),
        forget_capture=forget,
        options=DelivererOptions(
            settings.webhook_concurrency, timedelta(hours=settings.webhook_retry_hours)
        ),
    )
    reader = FanoutReader(
        new_consumer=consumer_factory(settings),
        connect=database_connector(settings),
        topic=settings.topic,
        group_id=settings.webhook_group,
        codec=default_codec(),
        macs=writer_macs(settings.writer_key_ring()),
        on_created=deliverer.wake.set,
        session_timeout_ms=settings.kafka_session_timeout_ms,
    )
    return DispatcherProcess(settings, pool, reader, deliverer, sender)


# Operator commands (and the set-up steps of `init` and `up`)


@contextlib.asynccontextmanager
async def operator_database(settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    """A command's database connection, closed on the way out."""
    conn = await connect_database(settings)
    try:
        yield conn
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def operator_producer(settings: Settings) -> AsyncIterator[AIOKafkaProducer]:
    """A command's started producer (`event_producer`), stopped on the way out."""
    producer = event_producer(settings)
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


@contextlib.asynccontextmanager
async def operator_consumer(settings: Settings, **options: Any) -> AsyncIterator[AIOKafkaConsumer]:
    """A command's started consumer (aiokafka options in `options`), stopped on the way out."""
    consumer = kafka_clients.new_consumer(settings.kafka, **options)
    await consumer.start()
    try:
        yield consumer
    finally:
        await consumer.stop()
