"""The event topic as the database holds it, for `restore-log` (services/operations/restore_log.py):
every record the projector applied or refused (journal, `duplicate_records`, `rejected_records`)
read back in offset order, and the rows that name the topic.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Final

import asyncpg

#: every stored record of the topic in log order; at one offset the journal's row comes first
STORED_RECORDS: Final = """
SELECT log_partition, log_offset, subject_id, record_key, record_value, event_type, event_id,
       recorded_at, record_mac, record_headers, source
FROM (
    SELECT log_partition, log_offset, subject_id, NULL::bytea AS record_key, record_value,
           event_type, event_id, recorded_at, record_mac, NULL::bytea AS record_headers,
           0 AS rank, 'journal' AS source
    FROM journal
    UNION ALL
    SELECT d.log_partition, d.log_offset, j.subject_id, NULL, d.record_value, j.event_type,
           d.event_id, j.recorded_at, d.record_mac, NULL, 1, 'duplicate'
    FROM duplicate_records d LEFT JOIN journal j ON j.event_id = d.event_id
    WHERE d.topic = $1
    UNION ALL
    SELECT log_partition, log_offset, NULL, record_key, record_value, NULL, NULL, NULL, NULL,
           record_headers, 2, 'rejected'
    FROM rejected_records WHERE topic = $1
) AS r
ORDER BY log_partition, log_offset, rank
"""

#: per partition: the last offset the database holds, and how many distinct offsets
HELD: Final = """
SELECT log_partition, max(log_offset) AS last, count(DISTINCT log_offset) AS held
FROM (
    SELECT log_partition, log_offset FROM journal
    UNION ALL SELECT log_partition, log_offset FROM duplicate_records WHERE topic = $1
    UNION ALL SELECT log_partition, log_offset FROM rejected_records WHERE topic = $1
) AS r
GROUP BY log_partition
"""

#: the tables that name the topic; moved to the new name when restoring under another one
TOPIC_TABLES: Final = (
    "projector_offsets",
    "checkpoint_state",
    "checkpoint_outbox",
    "duplicate_records",
    "rejected_records",
    "record_mac_cutoffs",
)


async def stored_records(conn: asyncpg.Connection, topic: str) -> AsyncIterator[asyncpg.Record]:
    """Every stored record of `topic` (STORED_RECORDS' columns), streamed (call it inside a
    transaction)."""
    async for row in conn.cursor(STORED_RECORDS, topic, prefetch=2000):
        yield row


async def held(conn: asyncpg.Connection, topic: str) -> tuple[dict[int, int], dict[int, int]]:
    """Per partition, the last offset the database holds and how many distinct offsets."""
    rows = await conn.fetch(HELD, topic)
    return (
        {r["log_partition"]: r["last"] for r in rows},
        {r["log_partition"]: r["held"] for r in rows},
    )


async def holds_records(conn: asyncpg.Connection, topic: str) -> bool:
    """Whether the database holds any record of the log, or a projected position in `topic`."""
    found: bool = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM journal) OR EXISTS (SELECT 1 FROM projector_offsets"
        " WHERE topic = $1 AND next_offset > 0)",
        topic,
    )
    return found


async def table_naming(conn: asyncpg.Connection, topic: str) -> str | None:
    """The first of TOPIC_TABLES holding a row of `topic`, or None."""
    for table in TOPIC_TABLES:
        if await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {table} WHERE topic = $1)", topic):
            return table
    return None


async def rename_topic(conn: asyncpg.Connection, source: str, topic: str) -> None:
    """Move every row of `source` to the name `topic` (in the caller's transaction)."""
    for table in TOPIC_TABLES:
        await conn.execute(f"UPDATE {table} SET topic = $1 WHERE topic = $2", topic, source)
