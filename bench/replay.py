"""The replay scenario and its baselines: the projector folding the whole log into empty
projections, against a bare consumer draining the same topic (B-consume) and a COPY of the
same rows into PostgreSQL (B-copy).

The projector's rate is counted from its first applied batch to its last, so the consumer
group join (a few seconds on the embedded broker) is not counted as replay time. Its memory is
sampled while it runs: "bounded" means the second half of the replay needs no more memory
than the first half did.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import asyncpg
from aiokafka import TopicPartition

from bench.dataset import CopyRow
from bench.processes import Child
from services.kafka_access import KafkaAccess
from services.ledger.kafka_clients import new_consumer

#: how often the replay's progress and the projector's memory are read
SAMPLE_S = 0.25

TOTAL = "SELECT coalesce(sum(next_offset), 0) FROM projector_offsets WHERE topic = $1"


@dataclass(slots=True)
class ReplayResult:
    events: int
    seconds: float
    rss_first_half_mb: float = 0.0
    rss_second_half_mb: float = 0.0
    projector_peak_mb: float = 0.0
    api_peak_mb: float = 0.0
    #: (events applied, projector RSS MB) as sampled
    samples: list[tuple[int, float]] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


def replay_rate(
    total: int, started: float, first: tuple[float, int] | None, finished: float
) -> tuple[int, float]:
    """Events and seconds counted: from the first progress seen to the end, or from the start
    when the replay was over before progress was first seen."""
    if first is not None and finished > first[0] and total > first[1]:
        return total - first[1], finished - first[0]
    return total, max(finished - started, 1e-9)


def memory_halves(samples: list[tuple[int, float]], total: int) -> tuple[float, float]:
    """Peak RSS while the first half of the events was applied, and during the second half."""
    first = [rss for done, rss in samples if done < total / 2]
    second = [rss for done, rss in samples if done >= total / 2]
    return max(first, default=0.0), max(second, default=0.0)


async def watch_replay(
    database_url: str,
    topic: str,
    total: int,
    projector: Child,
    api: Child | None,
    started: float,
    timeout_s: float = 7200,
) -> ReplayResult:
    """Wait (bounded) until the projector has stored offsets covering `total` records."""
    conn = await asyncpg.connect(database_url)
    samples: list[tuple[int, float]] = []
    first: tuple[float, int] | None = None
    try:
        while True:
            done = int(await conn.fetchval(TOTAL, topic))
            now = time.monotonic()
            memory = projector.memory()
            if memory is not None:
                samples.append((done, memory.rss_mb))
            if first is None and done > 0:
                first = (now, done)
            if done >= total:
                break
            if projector.process.poll() is not None:
                raise RuntimeError(
                    f"the projector exited during the replay; see {projector.log_path}"
                )
            if now - started > timeout_s:
                raise TimeoutError(
                    f"the replay did not finish within {timeout_s}s ({done}/{total})"
                )
            await asyncio.sleep(SAMPLE_S)
    finally:
        await conn.close()
    events, seconds = replay_rate(total, started, first, now)
    first_half, second_half = memory_halves(samples, total)
    peak = projector.memory()
    api_memory = api.memory() if api is not None else None
    return ReplayResult(
        events,
        seconds,
        first_half,
        second_half,
        peak.peak_mb if peak else 0.0,
        api_memory.peak_mb if api_memory else 0.0,
        samples,
    )


async def drain_rate(kafka: KafkaAccess, topic: str, total: int) -> float:
    """B-consume: records per second of a bare consumer (no group, no decoding) reading the
    first `total` records of every partition from the beginning."""
    consumer = new_consumer(kafka, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            await consumer.topics()
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        count = 0
        start = time.perf_counter()
        while count < total:
            fetched = await consumer.getmany(*tps, timeout_ms=1000, max_records=10_000)
            if not fetched and time.perf_counter() - start > 600:
                raise TimeoutError(f"drained only {count} of {total} records of {topic}")
            count += sum(len(records) for records in fetched.values())
        return count / (time.perf_counter() - start)
    finally:
        await consumer.stop()


COPY_TABLE = """
CREATE TABLE IF NOT EXISTS bench_copy (
    event_id      uuid        PRIMARY KEY,
    subject_id    text        NOT NULL,
    event_type    text        NOT NULL,
    log_partition integer     NOT NULL,
    log_offset    bigint      NOT NULL,
    occurred_at   timestamptz NOT NULL,
    record_value  bytea       NOT NULL
)
"""
COPY_COLUMNS = (
    "event_id",
    "subject_id",
    "event_type",
    "log_partition",
    "log_offset",
    "occurred_at",
    "record_value",
)


async def copy_rate(database_url: str, rows: list[CopyRow]) -> float:
    """B-copy: rows per second of one copy_records_to_table of journal-like rows into an
    empty table with a primary key (the rows are in memory before the clock starts)."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(COPY_TABLE)
        await conn.execute("TRUNCATE bench_copy")
        start = time.perf_counter()
        await conn.copy_records_to_table("bench_copy", records=rows, columns=COPY_COLUMNS)
        elapsed = time.perf_counter() - start
        await conn.execute("TRUNCATE bench_copy")
        return len(rows) / elapsed
    finally:
        await conn.close()
