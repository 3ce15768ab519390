"""Restoring the log from the journal when a broker comes back empty (the embedded broker
keeps its log in memory only).

The journal holds every event's original bytes in log order. They are produced again, in
order, to the same partitions; then the journal, the state rows and the stored offsets are
moved to the new positions in one transaction, so the projections still equal a replay.

Each subject's events keep their order (a subject's events are on one partition, and they are
produced in log order), so the journal's hash chains stay valid. The checkpoint digests start
again over the restored records: the old log is gone, and so is the memory-only broker's
checkpoint topic.
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg
from aiokafka import AIOKafkaProducer

from projections import log_digest
from projections.hash_chain import GENESIS
from projections.log_digest import PartitionDigest
from schemas.codec import headers_for
from services.config import Settings
from services.publisher import make_producer
from services.topic import highwaters

log = logging.getLogger(__name__)

_CHUNK = 5000

REMAP = """
WITH moved AS (
    UPDATE journal j SET log_partition = x.p, log_offset = x.o
    FROM unnest($1::uuid[], $2::int[], $3::bigint[]) AS x(e, p, o)
    WHERE j.event_id = x.e
    RETURNING j.event_id, j.log_partition, j.log_offset
), ids AS (
    UPDATE identifiers i SET log_partition = m.log_partition, log_offset = m.log_offset
    FROM moved m WHERE i.event_id = m.event_id
)
UPDATE subject_facts f SET log_partition = m.log_partition, log_offset = m.log_offset
FROM moved m WHERE f.event_id = m.event_id
"""


async def restore_if_log_empty(settings: Settings, conn: asyncpg.Connection) -> int:
    """Re-produce the journal when the topic is empty and the journal is not; returns the count."""
    if not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM journal)"):
        return 0
    marks = await highwaters(settings.kafka_bootstrap_servers, settings.topic)
    if any(marks.values()):
        return 0
    log.warning("event topic %s is empty but the journal is not: restoring the log", settings.topic)
    producer = make_producer(
        settings.kafka_bootstrap_servers,
        idempotence=settings.kafka_idempotence,
        timeout_ms=settings.produce_timeout_ms,
    )
    await producer.start()
    try:
        ids, parts, offs, digests = await _reproduce(producer, settings.topic, conn)
    finally:
        await producer.stop()
    async with conn.transaction():
        await conn.execute(REMAP, ids, parts, offs)
        await conn.execute("DELETE FROM projector_offsets WHERE topic = $1", settings.topic)
        # acknowledged positions refer to the old log; a replay now answers from the journal
        await conn.execute("UPDATE idempotency_keys SET ack_partitions = NULL, ack_offsets = NULL")
        ends: dict[int, int] = {}
        for p, o in zip(parts, offs, strict=True):
            ends[p] = max(ends.get(p, 0), o + 1)
        await conn.executemany(
            "INSERT INTO projector_offsets (topic, log_partition, next_offset) VALUES ($1, $2, $3)",
            [(settings.topic, p, n) for p, n in sorted(ends.items())],
        )
        await log_digest.restart(conn, settings.topic, digests.values())
    log.warning("restored %d events to %s", len(ids), settings.topic)
    return len(ids)


async def _reproduce(
    producer: AIOKafkaProducer, topic: str, conn: asyncpg.Connection
) -> tuple[list[object], list[int], list[int], dict[int, PartitionDigest]]:
    ids: list[object] = []
    parts: list[int] = []
    offs: list[int] = []
    digests: dict[int, PartitionDigest] = {}
    async with conn.transaction():
        cursor = conn.cursor(
            "SELECT event_id, subject_id, event_type, record_value FROM journal"
            " ORDER BY log_partition, log_offset"
        )
        batch: list[asyncpg.Record] = []
        async for row in cursor:
            batch.append(row)
            if len(batch) >= _CHUNK:
                await _send(producer, topic, batch, ids, parts, offs, digests)
                batch = []
        await _send(producer, topic, batch, ids, parts, offs, digests)
    return ids, parts, offs, digests


async def _send(
    producer: AIOKafkaProducer,
    topic: str,
    rows: list[asyncpg.Record],
    ids: list[object],
    parts: list[int],
    offs: list[int],
    digests: dict[int, PartitionDigest],
) -> None:
    futures = [
        await producer.send(
            topic,
            key=r["subject_id"].encode("utf-8"),
            value=bytes(r["record_value"]),
            headers=headers_for(r["event_type"], r["event_id"]),
        )
        for r in rows
    ]
    sent = zip(rows, await asyncio.gather(*futures), strict=True)
    for row, meta in sorted(sent, key=lambda s: (s[1].partition, s[1].offset)):
        ids.append(row["event_id"])
        parts.append(meta.partition)
        offs.append(meta.offset)
        start = PartitionDigest(meta.partition, meta.offset, meta.offset, 0, GENESIS, GENESIS)
        digests[meta.partition] = log_digest.advance(
            digests.get(meta.partition, start), [(meta.offset, bytes(row["record_value"]))]
        )
