"""The projector's stored positions: next offset per partition, moved only forward."""

from __future__ import annotations

from collections.abc import Mapping

import asyncpg

UPSERT = """
INSERT INTO projector_offsets AS o (topic, log_partition, next_offset, updated_at)
SELECT $1, p, n, now() FROM unnest($2::int[], $3::bigint[]) AS x(p, n)
ON CONFLICT (topic, log_partition) DO UPDATE
SET next_offset = GREATEST(o.next_offset, EXCLUDED.next_offset), updated_at = now()
"""


async def store(conn: asyncpg.Connection, topic: str, positions: Mapping[int, int]) -> None:
    if positions:
        await conn.execute(UPSERT, topic, list(positions), list(positions.values()))


async def load(conn: asyncpg.Connection | asyncpg.Pool, topic: str) -> dict[int, int]:
    rows = await conn.fetch(
        "SELECT log_partition, next_offset FROM projector_offsets WHERE topic = $1", topic
    )
    return {r["log_partition"]: r["next_offset"] for r in rows}
