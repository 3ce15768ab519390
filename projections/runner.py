"""The projector: consume the event topic and apply it to PostgreSQL in batches, each batch's
rows and offsets in one transaction, so a crash anywhere leaves a clean replay's tables.

Design: docs/developers/design/projector.md
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError, NoOffsetForPartitionError, OffsetOutOfRangeError

from projections import (
    chain_store,
    erasure,
    feed_outbox,
    identifiers,
    journal,
    link_revocations,
    log_digest,
    mac_cutoffs,
    metrics,
    notices,
    offsets,
    purposes,
    refusals,
    requests,
    subject_state,
)
from projections.log_records import LogRecord
from projections.projector_monitor import ProjectorMonitor
from projections.state import facts_for
from schemas.codec import EventCodec
from schemas.events import NOT_ABOUT_A_SUBJECT
from schemas.record_mac import EVENTS, RecordMacs, Verdict

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "ledger_progress"


@dataclass(slots=True)
class BatchResult:
    applied: int = 0
    duplicates: int = 0
    rejected: int = 0
    positions: dict[int, int] = field(default_factory=dict)


async def apply_batch(
    conn: asyncpg.Connection,
    codec: EventCodec,
    topic: str,
    records: Sequence[LogRecord],
    macs: RecordMacs,
) -> BatchResult:
    """Apply records in one transaction: journal (with its hash chain), state, rejects (and
    their dead letters), checkpoint digests, the batch's metrics and offsets together. Only
    records with a valid MAC (`macs`), or below their partition's MAC cut-off, are decoded."""
    started = time.perf_counter()
    result = BatchResult()
    firsts: dict[int, int] = {}
    for rec in records:
        result.positions[rec.partition] = max(
            result.positions.get(rec.partition, 0), rec.offset + 1
        )
        firsts[rec.partition] = min(firsts.get(rec.partition, rec.offset), rec.offset)

    async with conn.transaction():
        # first: lock the partitions' digest state, so two projectors never apply one
        # partition at once (a rebalance); skip what another one applied meanwhile
        digests = await log_digest.lock(conn, topic, firsts)
        pending = sorted(
            (r for r in records if r.offset >= digests[r.partition].next_offset),
            key=lambda r: (r.partition, r.offset),
        )
        verdicts = [macs.verify(EVENTS, r.key, r.value, r.headers) for r in pending]
        cutoffs = (
            await mac_cutoffs.load(conn, topic)
            if any(v is not Verdict.VALID for v in verdicts)
            else {}
        )
        candidates, rejects = refusals.screen(codec, pending, verdicts, cutoffs)
        fresh, repeats = await chain_store.link_new(conn, candidates)
        try:
            await journal.insert(conn, fresh)
        except journal.AlreadyJournaled as exc:  # the same event in another partition, meanwhile
            raise ConcurrentApplyError(
                "an event of this batch was journaled meanwhile; retrying"
            ) from exc
        await subject_state.upsert(
            conn,
            (
                (r.event.subject_id, f)
                for r in fresh
                for f in facts_for(r.event, (r.partition, r.offset))
            ),
        )
        await identifiers.upsert(
            conn,
            filter(None, (identifiers.row_for(r.event, (r.partition, r.offset)) for r in fresh)),
        )
        unsubscribed = metrics.unsubscribe_latencies((r.event for r in fresh), datetime.now(UTC))
        regranted = await notices.apply(conn, ((r.event, (r.partition, r.offset)) for r in fresh))
        redefined = await purposes.apply(conn, ((r.event, (r.partition, r.offset)) for r in fresh))
        # after the identifier rows: erasures suppress what the subject held then
        suppressed = await erasure.apply(conn, fresh)
        await requests.apply(conn, fresh)
        await link_revocations.apply(conn, fresh)
        await feed_outbox.enqueue(
            conn,
            [
                *(
                    (r.event.subject_id, (r.partition, r.offset))
                    for r in fresh
                    if r.event.type not in NOT_ABOUT_A_SUBJECT
                ),
                *regranted,
                *suppressed,
            ],
        )
        if redefined:  # every subject's published state decides with the new catalogue
            await feed_outbox.refill(conn)
        if rejects:
            await refusals.keep(conn, topic, rejects)
        await log_digest.keep_duplicates(
            conn, topic, [(p, o, e.event_id, v, mac) for e, p, o, v, mac in repeats]
        )
        await log_digest.store(
            conn,
            topic,
            digests,
            [
                log_digest.advance(d, ((r.offset, r.value) for r in pending if r.partition == p))
                for p, d in digests.items()
            ],
        )
        await metrics.observe_all(
            conn,
            {
                metrics.UNSUBSCRIBE_SECONDS: unsubscribed,
                metrics.BATCH_RECORDS: [len(records)],
                metrics.BATCH_SECONDS: [time.perf_counter() - started],
            },
        )
        await offsets.store(conn, topic, result.positions)
        await conn.execute("SELECT pg_notify($1, '')", NOTIFY_CHANNEL)
    result.applied = len(fresh)
    result.duplicates = len(repeats)
    result.rejected = len(rejects)
    return result


class ConcurrentApplyError(Exception):
    """Another projector journaled an event of this batch meanwhile: the batch's hash chain
    was computed without it, so the transaction is rolled back and the batch read again."""


class _SeekToStoredOffsets(ConsumerRebalanceListener):  # type: ignore[misc]
    """On assignment, continue from the offsets stored with the projections, not Kafka's."""

    def __init__(self, projector: Projector) -> None:
        self.projector = projector

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        self.projector.monitor.revoked()
        log.info("partitions revoked: %s", sorted(tp.partition for tp in revoked))

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        try:
            await self.projector.seek_to_stored(list(assigned))
        except Exception as exc:  # the consumer would only log it; the loop must seek first
            log.error("could not seek to the stored offsets (%s); retrying", exc)
            self.projector.must_seek = True


#: failures the projector survives: reconnect, then read again from the stored offsets
_RECOVERABLE = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, KafkaError)


class ConsumerFactory(Protocol):
    """Builds the projector's consumer from its options (aiokafka keyword arguments) with the
    brokers and credentials the caller holds: services/ledger/kafka_clients.py `new_consumer`
    bound to the settings (projections/ never imports services/)."""

    def __call__(self, **options: object) -> AIOKafkaConsumer: ...


class Projector:
    """One projector process: a consumer-group member with its own database connection."""

    def __init__(
        self,
        *,
        new_consumer: ConsumerFactory,
        connect: Callable[[], Awaitable[asyncpg.Connection]],
        topic: str,
        group_id: str,
        codec: EventCodec,
        macs: RecordMacs,
        batch_size: int = 2000,
        session_timeout_ms: int = 10000,
        fetch_wait_ms: int = 50,
    ) -> None:
        self.topic = topic
        self.codec = codec
        #: the writer keys: a record without a valid MAC is refused (see the module docstring)
        self.macs = macs
        self.batch_size = batch_size
        #: opens the projector's own connection (again after a failure)
        self.connect = connect
        self.consumer = new_consumer(
            group_id=group_id,
            enable_auto_commit=False,
            # never reset silently: a position the log cannot serve is a loss (log_loss.py)
            auto_offset_reset="none",
            session_timeout_ms=session_timeout_ms,
            heartbeat_interval_ms=max(100, session_timeout_ms // 5),
            max_poll_records=batch_size,
            # some brokers answer a waiting fetch only when this runs out, even if data arrived
            fetch_max_wait_ms=fetch_wait_ms,
        )
        self.monitor = ProjectorMonitor(self.consumer, topic, writer_key_ids=macs.key_ids)
        self.conn: asyncpg.Connection | None = None
        #: one statement at a time on `conn`: the rebalance listener runs beside the loop
        self.db_lock = asyncio.Lock()
        self.applied = 0
        #: the stored offsets must be read (again) before the next fetch
        self.must_seek = False

    async def seek_to_stored(self, assigned: list[TopicPartition]) -> None:
        assert self.conn is not None
        async with self.db_lock:
            stored = await offsets.load(self.conn, self.topic)
            for tp in assigned:
                if tp.partition in stored:
                    self.consumer.seek(tp, stored[tp.partition])
                else:  # explicitly: the consumer itself never resets (auto_offset_reset="none")
                    await self.consumer.seek_to_beginning(tp)
            await self.monitor.assigned(self.conn, assigned, stored)
        self.must_seek = False
        log.info("partitions assigned: %s", sorted(tp.partition for tp in assigned))

    async def run(self, stop: asyncio.Event) -> None:
        self.conn = await self.connect()
        try:
            self.consumer.subscribe([self.topic], listener=_SeekToStoredOffsets(self))
            await self.consumer.start()
            try:
                while not stop.is_set():
                    try:
                        await self.step(timeout_ms=200)
                        async with self.db_lock:
                            if await self.monitor.report(self.conn):
                                self.must_seek = True
                    except (*_RECOVERABLE, ConcurrentApplyError) as exc:
                        await self._recover(exc, stop)
            finally:
                await self.consumer.stop()
        finally:
            await self.conn.close()

    async def _recover(self, exc: Exception, stop: asyncio.Event) -> None:
        """The database failed mid-batch: reconnect, then re-read from the stored offsets."""
        log.error("projection batch failed, will retry from stored offsets: %s", exc)
        delay = 0.2
        while not stop.is_set():
            try:
                if self.conn is not None and not self.conn.is_closed():
                    await self.conn.close(timeout=1)
                self.conn = await self.connect()
                await self.seek_to_stored(list(self.consumer.assignment()))
                return
            except _RECOVERABLE as again:
                log.warning("still failing (%s); retrying in %.1fs", again, delay)
                try:
                    await asyncio.wait_for(stop.wait(), timeout=delay)
                except TimeoutError:
                    delay = min(delay * 2, 5.0)

    async def step(self, timeout_ms: int) -> BatchResult | None:
        """Fetch one batch and apply it; None when nothing arrived or nothing may be applied."""
        assert self.conn is not None
        if self.must_seek:
            await self.seek_to_stored(list(self.consumer.assignment()))
        try:
            fetched = await self.consumer.getmany(
                timeout_ms=timeout_ms, max_records=self.batch_size
            )
        except OffsetOutOfRangeError as exc:
            async with self.db_lock:
                await self.monitor.out_of_range(self.conn, exc.args[0] if exc.args else {})
            return None
        except NoOffsetForPartitionError:
            # fetched before the assignment's seek ran (the consumer never resets by itself):
            # position every assigned partition from the stored offsets, then fetch again
            log.info("a partition was fetched before it was positioned; seeking to stored offsets")
            self.must_seek = True
            return None
        async with self.db_lock:
            # records fetched now are read again from the stored offsets once a stop is cleared
            if await self.monitor.check_fetched(self.conn):
                self.must_seek = True  # what was fetched is read again from the stored offsets
                return None
            records: list[LogRecord] = [m for msgs in fetched.values() for m in msgs]
            if not records:
                return None
            result = await apply_batch(self.conn, self.codec, self.topic, records, self.macs)
            self.monitor.applied(result.positions)
        self.applied += result.applied
        return result
