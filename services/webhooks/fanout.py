"""The fan-out side of the dispatcher: a member of its own consumer group on the event topic
that turns each event into a pending delivery per subscription, in one transaction with its
positions (webhook_dispatch_offsets), read from there at every assignment: the group only
shares the partitions out. Records are screened as the projector screens them (a MAC at or
above the partition's cut-off, then the codec: projections/refusals.py); a refused record gets
no delivery (the projector keeps it as a dead letter).

Design: docs/developers/design/webhooks.md
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence

import asyncpg
from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError, NoOffsetForPartitionError, OffsetOutOfRangeError

from projections import mac_cutoffs, refusals
from projections import webhook_fanout as fanout
from projections.log_records import LogRecord
from projections.runner import ConsumerFactory
from schemas.codec import EventCodec
from schemas.record_mac import EVENTS, RecordMacs, Verdict
from services.rules.webhook_delivery import Subscriber, subscribers_of

log = logging.getLogger(__name__)

_RECOVERABLE = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, KafkaError)


async def fan_out(
    conn: asyncpg.Connection,
    codec: EventCodec,
    topic: str,
    records: Sequence[LogRecord],
    macs: RecordMacs,
) -> int:
    """Create the deliveries of `records` and store the positions after them, in one
    transaction; records below a stored position (fanned out already) are skipped. Answers
    how many deliveries were created."""
    ends: dict[int, int] = {}
    firsts: dict[int, int] = {}
    for r in records:
        ends[r.partition] = max(ends.get(r.partition, 0), r.offset + 1)
        firsts[r.partition] = min(firsts.get(r.partition, r.offset), r.offset)
    async with conn.transaction():
        stored = await fanout.lock_offsets(conn, firsts)
        fresh = [r for r in records if r.offset >= stored[r.partition]]
        verdicts = [macs.verify(EVENTS, r.key, r.value, r.headers) for r in fresh]
        cutoffs = (
            await mac_cutoffs.load(conn, topic)
            if any(v is not Verdict.VALID for v in verdicts)
            else {}
        )
        candidates, refused = refusals.screen(codec, fresh, verdicts, cutoffs)
        if refused:
            log.warning("%d refused records get no webhook delivery", len(refused))
        subs = [Subscriber(*s) for s in await fanout.subscribers(conn)]
        rows = [
            fanout.NewDelivery(sid, event, partition, offset)
            for event, partition, offset, _, _ in candidates
            for sid in subscribers_of(event.type, event.recorded_at, subs)
        ]
        created = await fanout.insert_deliveries(conn, rows)
        await fanout.store_offsets(conn, ends)
    return created


class _SeekToStored(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, reader: FanoutReader) -> None:
        self.reader = reader

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        log.info("webhook partitions revoked: %s", sorted(tp.partition for tp in revoked))

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        self.reader.must_seek = True


class FanoutReader:
    """One dispatcher's consumer and its own database connection."""

    def __init__(
        self,
        *,
        new_consumer: ConsumerFactory,
        connect: Callable[[], Awaitable[asyncpg.Connection]],
        topic: str,
        group_id: str,
        codec: EventCodec,
        macs: RecordMacs,
        on_created: Callable[[], None],
        batch_size: int = 500,
        session_timeout_ms: int = 10000,
    ) -> None:
        self.topic = topic
        self.codec = codec
        self.macs = macs
        self.connect = connect
        self.on_created = on_created
        self.batch_size = batch_size
        self.consumer = new_consumer(
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="none",
            session_timeout_ms=session_timeout_ms,
            heartbeat_interval_ms=max(100, session_timeout_ms // 5),
            max_poll_records=batch_size,
            fetch_max_wait_ms=100,
        )
        self.conn: asyncpg.Connection | None = None
        self.must_seek = False
        self.created = 0

    async def seek_to_stored(self) -> None:
        """Position every assigned partition at its stored offset (the beginning when none);
        a stored offset past the partition's end is brought back to it (fanout.clamp_offsets)."""
        assert self.conn is not None
        assigned = list(self.consumer.assignment())
        ends = await self.consumer.end_offsets(assigned) if assigned else {}
        moved = await fanout.clamp_offsets(self.conn, {tp.partition: n for tp, n in ends.items()})
        for partition, was in moved.items():
            log.warning(
                "webhook position of partition %d was %d, past the log's end: the log lost"
                " records (restored from the journal?); continuing from its end",
                partition,
                was,
            )
        stored = await fanout.load_offsets(self.conn)
        for tp in assigned:
            if tp.partition in stored:
                self.consumer.seek(tp, stored[tp.partition])
            else:
                await self.consumer.seek_to_beginning(tp)
        self.must_seek = False
        log.info("webhook partitions assigned: %s", sorted(tp.partition for tp in assigned))

    async def run(self, stop: asyncio.Event) -> None:
        self.conn = await self.connect()
        try:
            self.consumer.subscribe([self.topic], listener=_SeekToStored(self))
            await self.consumer.start()
            try:
                while not stop.is_set():
                    try:
                        await self.step(timeout_ms=200)
                    except _RECOVERABLE as exc:
                        await self._recover(exc, stop)
            finally:
                await self.consumer.stop()
        finally:
            await self.conn.close()

    async def step(self, timeout_ms: int) -> None:
        assert self.conn is not None
        if self.must_seek:
            await self.seek_to_stored()
        try:
            fetched = await self.consumer.getmany(
                timeout_ms=timeout_ms, max_records=self.batch_size
            )
        except (OffsetOutOfRangeError, NoOffsetForPartitionError) as exc:
            log.warning("webhook fetch out of position (%s); seeking to stored offsets", exc)
            self.must_seek = True
            return
        if self.must_seek:  # assigned anew while fetching: read from the stored offsets
            return
        records: list[LogRecord] = [m for msgs in fetched.values() for m in msgs]
        if not records:
            return
        created = await fan_out(self.conn, self.codec, self.topic, records, self.macs)
        self.created += created
        if created:
            self.on_created()

    async def _recover(self, exc: Exception, stop: asyncio.Event) -> None:
        log.error("webhook fan-out failed, will retry from stored offsets: %s", exc)
        delay = 0.2
        while not stop.is_set():
            try:
                if self.conn is not None and not self.conn.is_closed():
                    await self.conn.close(timeout=1)
                self.conn = await self.connect()
                self.must_seek = True
                return
            except _RECOVERABLE as again:
                log.warning("still failing (%s); retrying in %.1fs", again, delay)
                try:
                    await asyncio.wait_for(stop.wait(), timeout=delay)
                except TimeoutError:
                    delay = min(delay * 2, 5.0)
