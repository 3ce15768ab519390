"""The projector's operational tables (`projector_partitions`, `projector_stops`): written by
the projector between batches, never inside one, and read by the staleness guard, /readyz and
/metrics. They describe the projector, not the log, so a clean replay need not reproduce them.

Each partition's row also names the writer keys its owner checks record MACs with: the API
refuses to write, and to decide, while the owner of a partition does not know the key it MACs
with (projections/freshness.py), since the owner would dead-letter what it writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from projections.freshness import PartitionFreshness
from projections.log_loss import LogLoss


@dataclass(frozen=True, slots=True)
class PartitionReport:
    """What a projector reports of one partition it owns; `caught_up_age_s` is how long ago
    it was last caught up (None: not since it started, or it is stopped)."""

    partition: int
    position: int
    highwater: int | None
    caught_up_age_s: float | None


# The database's clock for both instants; a later report never moves caught_up_at back.
REPORT = """
INSERT INTO projector_partitions AS p
    (topic, log_partition, position, highwater, caught_up_at, updated_at, writer_key_ids)
SELECT $1, x.p, x.pos, x.hw, now() - make_interval(secs => x.age), now(), $6::text[]
FROM unnest($2::int[], $3::bigint[], $4::bigint[], $5::float8[]) AS x(p, pos, hw, age)
ORDER BY x.p
ON CONFLICT (topic, log_partition) DO UPDATE SET
    position = EXCLUDED.position,
    highwater = EXCLUDED.highwater,
    caught_up_at = GREATEST(p.caught_up_at, EXCLUDED.caught_up_at),
    updated_at = now(),
    writer_key_ids = EXCLUDED.writer_key_ids
"""


async def report(
    conn: asyncpg.Connection,
    topic: str,
    reports: Sequence[PartitionReport],
    writer_key_ids: Sequence[str],
) -> None:
    """Report the partitions a projector owns, and the writer keys it checks MACs with."""
    if reports:
        await conn.execute(
            REPORT,
            topic,
            [r.partition for r in reports],
            [r.position for r in reports],
            [r.highwater for r in reports],
            [r.caught_up_age_s for r in reports],
            list(writer_key_ids),
        )


async def report_writer_keys(
    conn: asyncpg.Connection, topic: str, partitions: Sequence[int], writer_key_ids: Sequence[str]
) -> None:
    """On assignment, before applying anything: the new owner's writer keys replace the previous
    owner's at once, so the API does not trust them a report interval longer (a partition not
    reported yet has no row, and the guard refuses it anyway)."""
    await conn.execute(
        "UPDATE projector_partitions SET writer_key_ids = $3::text[]"
        " WHERE topic = $1 AND log_partition = ANY($2::int[])",
        topic,
        list(partitions),
        list(writer_key_ids),
    )


LOAD = """
SELECT log_partition, position, highwater,
       extract(epoch FROM now() - caught_up_at)::float8 AS behind_s, writer_key_ids
FROM projector_partitions WHERE topic = $1 ORDER BY log_partition
"""


def _keys(ids: list[str] | None) -> tuple[str, ...] | None:
    return None if ids is None else tuple(ids)


async def load(conn: asyncpg.Connection | asyncpg.Pool, topic: str) -> list[PartitionFreshness]:
    """Every reported partition, with how far behind it is by the database's clock now."""
    rows = await conn.fetch(LOAD, topic)
    return [
        PartitionFreshness(
            r["log_partition"],
            r["position"],
            r["highwater"],
            r["behind_s"],
            _keys(r["writer_key_ids"]),
        )
        for r in rows
    ]


RECORD_STOPS = """
INSERT INTO projector_stops AS s
    (topic, log_partition, problem, stored_offset, log_start, highwater)
SELECT $1, * FROM unnest($2::int[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[])
ON CONFLICT (topic, log_partition) DO NOTHING
"""


async def record_stops(conn: asyncpg.Connection, topic: str, losses: Sequence[LogLoss]) -> None:
    """Stop every projector of `topic`; the first detection of a partition is kept."""
    await conn.execute(
        RECORD_STOPS,
        topic,
        [x.partition for x in losses],
        [x.problem for x in losses],
        [x.stored_offset for x in losses],
        [x.log_start for x in losses],
        [x.highwater for x in losses],
    )


def _loss(row: asyncpg.Record) -> LogLoss:
    return LogLoss(
        row["log_partition"],
        row["problem"],
        row["stored_offset"],
        row["log_start"],
        row["highwater"],
    )


async def load_stops(conn: asyncpg.Connection | asyncpg.Pool, topic: str) -> list[LogLoss]:
    rows = await conn.fetch(
        "SELECT log_partition, problem, stored_offset, log_start, highwater"
        " FROM projector_stops WHERE topic = $1 ORDER BY log_partition",
        topic,
    )
    return [_loss(r) for r in rows]


async def clear_stops(conn: asyncpg.Connection, topic: str) -> list[LogLoss]:
    """The operator's resume: remove the stops of `topic`, returning what they said."""
    rows = await conn.fetch(
        "DELETE FROM projector_stops WHERE topic = $1"
        " RETURNING log_partition, problem, stored_offset, log_start, highwater",
        topic,
    )
    return sorted((_loss(r) for r in rows), key=lambda x: x.partition)
