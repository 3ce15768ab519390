"""Restoring a lost event topic from the database: `consent-ledger restore-log`, and what `up`
does when the embedded broker (which keeps its log in memory only) comes back empty.

Design: docs/developers/design/restore-log.md
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field

import asyncpg
from aiokafka.errors import KafkaError
from rich.progress import Progress

from projections import log_digest, offsets, refusals, stored_log, webhook_fanout
from projections.hash_chain import GENESIS
from projections.log_digest import PartitionDigest
from schemas.record_mac import EVENTS, encode_headers
from services.bootstrap import connect_database, operator_producer
from services.config import Settings
from services.ledger import idempotency
from services.ledger.record_producer import writer_macs
from services.ledger.topic import ensure_topic, highwaters, partition_count
from services.operations.backup_format import Headers, count_mismatches
from services.operations.log_writer import OffsetMismatch, OrderedWriter
from services.operations.progress_bar import record_progress
from services.operations.restore_plan import (
    PLACEHOLDER,
    PLACEHOLDER_ERROR,
    PLACEHOLDER_HEADERS,
    PLACEHOLDER_KEY,
    GapFiller,
    OutRecord,
    gap_partitions,
    log_ends,
    stored_record,
)

log = logging.getLogger(__name__)


class RestoreError(Exception):
    """The log could not be restored from the database."""


class RestoreRefused(RestoreError):
    """The topic cannot take the restore; nothing was written."""


class RestoreFailed(RestoreError):
    """Records were written but the restore did not finish or verify; the database is as
    before (its transaction rolled back)."""


@dataclass(slots=True)
class RestoreLogResult:
    topic: str
    #: records produced per source: journal, duplicate, rejected, placeholder
    sources: dict[str, int] = field(default_factory=dict)
    #: per partition: records produced = high-water mark = stored next offset
    ends: dict[int, int] = field(default_factory=dict)
    #: partitions that got placeholders, whose checkpoint digests started again
    restarted: list[int] = field(default_factory=list)
    #: the webhook dispatcher's positions and deliveries past the restored ends
    webhooks: webhook_fanout.LostTail | None = None

    @property
    def records(self) -> int:
        return sum(self.sources.values())


async def _check_target(
    settings: Settings, conn: asyncpg.Connection, source: str, ends: dict[int, int]
) -> None:
    topic = settings.topic
    if source != topic:
        table = await stored_log.table_naming(conn, topic)
        if table is not None:
            raise RestoreRefused(f"the database already holds rows of topic {topic} ({table})")
    count = await partition_count(settings.kafka, topic)
    if count is None:
        raise RestoreRefused(f"topic {topic} does not exist: pass --create-topic, or create it")
    if max(ends) >= count:
        raise RestoreRefused(
            f"topic {topic} has {count} partitions; the database holds records of partition"
            f" {max(ends)}: recreate it with the partition count it had"
        )
    marks = await highwaters(settings.kafka, topic)
    if any(marks.values()):
        raise RestoreRefused(
            f"topic {topic} is not empty ({sum(marks.values())} records): restore-log writes only"
            " into an empty topic"
        )


class _Producing:
    """Produces the planned records and keeps what the database update needs."""

    def __init__(self, writer: OrderedWriter, gaps: set[int]) -> None:
        self.writer = writer
        self.sources: dict[str, int] = {}
        self.placeholders: list[tuple[int, int]] = []
        self.digests = {p: PartitionDigest(p, 0, 0, 0, GENESIS, GENESIS) for p in sorted(gaps)}
        self._digest_batch: dict[int, list[tuple[int, bytes | None]]] = {p: [] for p in gaps}

    async def emit(self, records: list[OutRecord]) -> int:
        done = 0
        for r in records:
            self.sources[r.source] = self.sources.get(r.source, 0) + 1
            if r.source == PLACEHOLDER:
                self.placeholders.append((r.partition, r.offset))
            batch = self._digest_batch.get(r.partition)
            if batch is not None:
                batch.append((r.offset, r.value))
                if len(batch) >= 1000:
                    self._advance(r.partition)
            done += await self.writer.write(r.partition, r.key, r.value, r.headers, r.timestamp)
        return done

    def _advance(self, partition: int) -> None:
        batch, self._digest_batch[partition] = self._digest_batch[partition], []
        self.digests[partition] = log_digest.advance(self.digests[partition], batch)

    async def finish(self) -> int:
        for partition in self._digest_batch:
            self._advance(partition)
        return await self.writer.flush()


async def restore_log(
    settings: Settings,
    conn: asyncpg.Connection,
    *,
    source_topic: str | None = None,
    progress: Progress | None = None,
) -> RestoreLogResult:
    """Produce the database's records of `source_topic` (default: the configured topic, the
    name the database knows them by) into the empty configured topic and make the database
    agree, in one transaction that blocks projector batches and retention meanwhile."""
    source = source_topic or settings.topic
    result = RestoreLogResult(settings.topic)
    # placeholders are records the ledger writes now: MACed like any other (all the same)
    macs = writer_macs(settings.writer_key_ring())
    sealed = tuple(macs.seal(EVENTS, PLACEHOLDER_KEY, None, PLACEHOLDER_HEADERS))
    async with conn.transaction():
        await log_digest.lock_out_batches(conn)
        last, held = await stored_log.held(conn, source)
        ends = log_ends(await offsets.load(conn, source), last)
        if not ends:
            return result
        await _check_target(settings, conn, source, ends)
        gaps = gap_partitions(ends, held)
        task = progress.add_task(settings.topic, total=sum(ends.values())) if progress else None
        filler = GapFiller(ends, sealed)

        def advance(n: int) -> None:
            if progress is not None and task is not None:
                progress.advance(task, n)

        async with operator_producer(settings) as producer:
            producing = _Producing(OrderedWriter(producer, settings.topic), gaps)
            try:
                async for row in stored_log.stored_records(conn, source):
                    advance(await producing.emit(filler.feed(stored_record(row))))
                advance(await producing.emit(filler.finish()))
                advance(await producing.finish())
            except (OffsetMismatch, ValueError) as exc:
                raise RestoreFailed(str(exc)) from None
        marks = await highwaters(settings.kafka, settings.topic)
        wrong = count_mismatches(ends, marks) + count_mismatches(ends, producing.writer.written)
        if wrong:
            p, planned, found = wrong[0]
            raise RestoreFailed(f"partition {p}: {planned} records restored, the topic has {found}")
        await _update_database(conn, settings.topic, source, ends, producing, sealed)
        # before any producer starts: events appended next take the offsets past the ends
        result.webhooks = await webhook_fanout.rewind_to_log(conn, ends)
    result.sources, result.ends = producing.sources, ends
    result.restarted = sorted(producing.digests)
    return result


async def _update_database(
    conn: asyncpg.Connection,
    topic: str,
    source: str,
    ends: dict[int, int],
    producing: _Producing,
    placeholder_headers: Headers,
) -> None:
    if source != topic:
        await stored_log.rename_topic(conn, source, topic)
    await refusals.keep_placeholders(
        conn,
        topic,
        producing.placeholders,
        key=PLACEHOLDER_KEY,
        error=PLACEHOLDER_ERROR,
        headers=encode_headers(placeholder_headers),
    )
    await offsets.store(conn, topic, ends)
    await log_digest.restart(conn, topic, producing.digests.values())
    # acknowledged positions may name records the old log lost; a retry asks the journal
    await idempotency.forget_acks(conn)


async def restore_if_log_empty(settings: Settings, conn: asyncpg.Connection) -> int:
    """`up`'s restore: when the topic is empty and the database holds records, restore them;
    returns how many records were produced."""
    if not await stored_log.holds_records(conn, settings.topic):
        return 0
    marks = await highwaters(settings.kafka, settings.topic)
    if any(marks.values()):
        return 0
    log.warning(
        "event topic %s is empty but the database is not: restoring the log", settings.topic
    )
    result = await restore_log(settings, conn)
    log.warning("restored %d records to %s (%s)", result.records, settings.topic, result.sources)
    if result.webhooks is not None and (result.webhooks.moved or result.webhooks.delivered):
        log.warning("%s", _webhooks_line(result.webhooks))
    return result.records


def _webhooks_line(tail: webhook_fanout.LostTail) -> str:
    return (
        f"  webhooks: positions past the restored log moved back ({len(tail.moved)} partitions);"
        f" {tail.dropped} pending or parked deliveries of events the log lost deleted,"
        f" {tail.delivered} such events had been delivered already"
    )


def report(result: RestoreLogResult) -> str:
    sources = ", ".join(f"{n:,} {source}" for source, n in sorted(result.sources.items()))
    ends = ", ".join(f"{p}: {n}" for p, n in result.ends.items())
    lines = [
        f"restore-log: {result.records:,} records to {result.topic} ({sources}), each at its"
        " original offset",
        f"  stored offsets = high-water marks: {ends}",
    ]
    if result.webhooks is not None and (result.webhooks.moved or result.webhooks.delivered):
        lines.append(_webhooks_line(result.webhooks))
    if result.restarted:
        lines.append(
            "  placeholders in partitions "
            + ", ".join(map(str, result.restarted))
            + ": their checkpoint digests start again over the restored records"
        )
    return "\n".join(lines)


async def run_restore_log(
    settings: Settings, *, source_topic: str | None, create_topic: bool, progress: bool
) -> int:
    try:
        if create_topic:
            await ensure_topic(settings)
        conn = await connect_database(settings)
    except (OSError, asyncpg.PostgresError, KafkaError) as exc:
        print(f"consent-ledger restore-log: cannot reach the servers ({exc})", file=sys.stderr)
        return 1
    try:
        with record_progress(progress) as bar:
            result = await restore_log(settings, conn, source_topic=source_topic, progress=bar)
    except RestoreRefused as exc:
        print(f"consent-ledger restore-log: {exc}; nothing restored", file=sys.stderr)
        return 2
    except (RestoreFailed, KafkaError, TimeoutError, OSError, asyncpg.PostgresError) as exc:
        print(
            f"consent-ledger restore-log: failed ({exc}); the database is unchanged. The topic"
            " may hold part of the log: delete and recreate it, then run restore-log again",
            file=sys.stderr,
        )
        return 1
    finally:
        await conn.close()
    if not result.records:
        source = source_topic or settings.topic
        print(
            f"consent-ledger restore-log: the database holds no records of {source}: nothing"
            " to restore",
            file=sys.stderr,
        )
        return 2
    print(report(result))
    return 0
