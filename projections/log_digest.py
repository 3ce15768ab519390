"""Checkpoint digests of the event topic (tables `checkpoint_state`, `checkpoint_outbox`,
`duplicate_records`): the running digest per partition, kept in each batch's transaction, and
the checkpoints cut from it for the checkpointer to publish (services/projector/checkpointer.py).

The digest is defined in projections/hash_chain.py. It continues across checkpoints, so the
running digest of a partition after offset n is the same however often checkpoints were cut.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import asyncpg

from projections.hash_chain import GENESIS, records_digest


@dataclass(frozen=True, slots=True)
class PartitionDigest:
    """The open (not yet checkpointed) range of one partition and its running digest."""

    partition: int
    from_offset: int
    next_offset: int
    record_count: int
    previous_digest: bytes
    digest: bytes


def advance(state: PartitionDigest, records: Iterable[tuple[int, bytes | None]]) -> PartitionDigest:
    """The state after the (offset, value) records at or beyond its next offset, in order."""
    fresh = sorted((r for r in records if r[0] >= state.next_offset), key=lambda r: r[0])
    if not fresh:
        return state
    return replace(
        state,
        next_offset=fresh[-1][0] + 1,
        record_count=state.record_count + len(fresh),
        digest=records_digest(state.digest, fresh),
    )


#: Creates missing rows and locks every row, in partition order (a no-op update locks it).
LOCK = """
INSERT INTO checkpoint_state AS s (topic, log_partition, from_offset, next_offset,
                                   previous_digest, digest)
SELECT $1, p, o, o, $4::bytea, $4::bytea
FROM unnest($2::int[], $3::bigint[]) AS x(p, o)
ORDER BY p
ON CONFLICT (topic, log_partition) DO UPDATE SET next_offset = s.next_offset
RETURNING log_partition, from_offset, next_offset, record_count, previous_digest, digest
"""


async def lock(
    conn: asyncpg.Connection, topic: str, first_offsets: Mapping[int, int]
) -> dict[int, PartitionDigest]:
    """Lock the partitions a batch touches (until its transaction ends) and read their state.

    A partition seen for the first time starts at the batch's first offset of it. Taken first
    in each batch: a projector still applying a partition it lost in a rebalance and the one
    that got it then take turns, and the later sees how far the earlier got.
    """
    parts = sorted(first_offsets)
    rows = await conn.fetch(LOCK, topic, parts, [first_offsets[p] for p in parts], GENESIS)
    return {r["log_partition"]: _state(r) for r in rows}


async def lock_partitions(conn: asyncpg.Connection, topic: str, partitions: Sequence[int]) -> None:
    """Lock these partitions' rows as a batch does first (until the caller's transaction
    ends), so no batch of them runs meanwhile; partitions with no row yet are not locked."""
    await conn.fetch(
        "SELECT log_partition FROM checkpoint_state WHERE topic = $1"
        " AND log_partition = ANY($2::int[]) ORDER BY log_partition FOR UPDATE",
        topic,
        sorted(partitions),
    )


async def lock_out_batches(conn: asyncpg.Connection) -> None:
    """Hold off every projector batch (each locks a row of `checkpoint_state` first) and
    every `lock_out_restores` until the caller's transaction ends (restore-log)."""
    await conn.execute("LOCK TABLE checkpoint_state IN EXCLUSIVE MODE")


async def lock_out_restores(conn: asyncpg.Connection) -> None:
    """Hold off `lock_out_batches` (a restore-log) until the caller's transaction ends, but not
    projector batches: ROW SHARE conflicts with EXCLUSIVE, not with row locks."""
    await conn.execute("LOCK TABLE checkpoint_state IN ROW SHARE MODE")


def _state(row: asyncpg.Record) -> PartitionDigest:
    return PartitionDigest(
        row["log_partition"],
        row["from_offset"],
        row["next_offset"],
        row["record_count"],
        bytes(row["previous_digest"]),
        bytes(row["digest"]),
    )


STORE = """
UPDATE checkpoint_state s
SET next_offset = x.n, record_count = x.c, digest = x.d, opened_at = COALESCE(s.opened_at, now())
FROM unnest($2::int[], $3::bigint[], $4::bigint[], $5::bytea[]) AS x(p, n, c, d)
WHERE s.topic = $1 AND s.log_partition = x.p
"""


async def store(
    conn: asyncpg.Connection,
    topic: str,
    before: Mapping[int, PartitionDigest],
    after: Sequence[PartitionDigest],
) -> None:
    """Write the states a batch advanced (in the batch's transaction)."""
    moved = [s for s in after if s != before.get(s.partition)]
    if moved:
        await conn.execute(
            STORE,
            topic,
            [s.partition for s in moved],
            [s.next_offset for s in moved],
            [s.record_count for s in moved],
            [s.digest for s in moved],
        )


DUPLICATES = """
INSERT INTO duplicate_records (topic, log_partition, log_offset, event_id, record_value,
                               record_mac)
SELECT $1, * FROM unnest($2::int[], $3::bigint[], $4::uuid[], $5::bytea[], $6::text[])
ON CONFLICT DO NOTHING
"""


async def keep_duplicates(
    conn: asyncpg.Connection,
    topic: str,
    records: Sequence[tuple[int, int, object, bytes, str | None]],
) -> None:
    """Keep the records skipped as repeats of a journaled event: (partition, offset, id, value,
    MAC header)."""
    if records:
        await conn.execute(
            DUPLICATES,
            topic,
            [r[0] for r in records],
            [r[1] for r in records],
            [r[2] for r in records],
            [r[3] for r in records],
            [r[4] for r in records],
        )


@dataclass(frozen=True, slots=True)
class Cut:
    """A checkpoint: the records of [from_offset, to_offset) of one partition and their digest."""

    topic: str
    partition: int
    from_offset: int
    to_offset: int
    record_count: int
    previous_digest: bytes
    digest: bytes
    created_at: datetime


DUE = """
SELECT log_partition, from_offset, next_offset, record_count, previous_digest, digest, now() AS at
FROM checkpoint_state
WHERE topic = $1 AND record_count > 0
  AND ($2 OR opened_at <= now() - make_interval(secs => $3))
ORDER BY log_partition
FOR UPDATE
"""

QUEUE = """
INSERT INTO checkpoint_outbox (topic, log_partition, from_offset, to_offset, record_count,
                               previous_digest, digest, created_at)
SELECT $1, * FROM unnest($2::int[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bytea[],
                         $7::bytea[], $8::timestamptz[])
"""

RESET = """
UPDATE checkpoint_state s
SET from_offset = s.next_offset, record_count = 0, previous_digest = s.digest, opened_at = NULL
WHERE s.topic = $1 AND s.log_partition = ANY($2::int[])
"""


async def cut(conn: asyncpg.Connection, topic: str, interval_s: float, *, every: bool) -> int:
    """Turn each open range into a checkpoint in the outbox: those open for `interval_s` or
    longer, or every non-empty one. Returns how many were cut."""
    async with conn.transaction():
        rows = await conn.fetch(DUE, topic, every, interval_s)
        if not rows:
            return 0
        cuts = [
            Cut(
                topic,
                r["log_partition"],
                r["from_offset"],
                r["next_offset"],
                r["record_count"],
                bytes(r["previous_digest"]),
                bytes(r["digest"]),
                r["at"],
            )
            for r in rows
        ]
        await conn.execute(
            QUEUE,
            topic,
            [c.partition for c in cuts],
            [c.from_offset for c in cuts],
            [c.to_offset for c in cuts],
            [c.record_count for c in cuts],
            [c.previous_digest for c in cuts],
            [c.digest for c in cuts],
            [c.created_at for c in cuts],
        )
        await conn.execute(RESET, topic, [c.partition for c in cuts])
    return len(cuts)


CLAIM = """
SELECT id, topic, log_partition, from_offset, to_offset, record_count, previous_digest, digest,
       created_at
FROM checkpoint_outbox ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED
"""


async def claim(conn: asyncpg.Connection, limit: int) -> list[tuple[int, Cut]]:
    """The oldest queued checkpoints, locked until the caller's transaction ends."""
    rows = await conn.fetch(CLAIM, limit)
    return [
        (
            r["id"],
            Cut(
                r["topic"],
                r["log_partition"],
                r["from_offset"],
                r["to_offset"],
                r["record_count"],
                bytes(r["previous_digest"]),
                bytes(r["digest"]),
                r["created_at"],
            ),
        )
        for r in rows
    ]


async def published(conn: asyncpg.Connection, ids: Sequence[int]) -> None:
    await conn.execute("DELETE FROM checkpoint_outbox WHERE id = ANY($1::bigint[])", list(ids))


async def states(conn: asyncpg.Connection | asyncpg.Pool, topic: str) -> list[PartitionDigest]:
    rows = await conn.fetch(
        "SELECT log_partition, from_offset, next_offset, record_count, previous_digest, digest"
        " FROM checkpoint_state WHERE topic = $1 ORDER BY log_partition",
        topic,
    )
    return [_state(r) for r in rows]


async def restart(
    conn: asyncpg.Connection, topic: str, restored: Iterable[PartitionDigest]
) -> None:
    """After a restore re-produced these partitions with records the old log did not have
    (services/operations/restore_log.py): their open ranges and queued checkpoints described the
    old log, so they go, and each digest starts again over the restored records (in the caller's
    transaction). Other partitions keep theirs."""
    states = list(restored)
    partitions = [s.partition for s in states]
    await conn.execute(
        "DELETE FROM checkpoint_state WHERE topic = $1 AND log_partition = ANY($2::int[])",
        topic,
        partitions,
    )
    await conn.execute(
        "DELETE FROM checkpoint_outbox WHERE topic = $1 AND log_partition = ANY($2::int[])",
        topic,
        partitions,
    )
    await conn.executemany(
        "INSERT INTO checkpoint_state (topic, log_partition, from_offset, next_offset,"
        " record_count, previous_digest, digest, opened_at) VALUES ($1, $2, $3, $4, $5, $6, $7,"
        " now())",
        [
            (
                topic,
                s.partition,
                s.from_offset,
                s.next_offset,
                s.record_count,
                s.previous_digest,
                s.digest,
            )
            for s in states
        ],
    )


#: Every stored record of a partition in an offset range: the journal (first occurrences),
#: the skipped duplicates and the undecodable records; at one offset the journal's row wins.
STORED_RECORDS = """
SELECT log_offset, record_value FROM (
    SELECT log_offset, record_value, 0 AS rank FROM journal
    WHERE log_partition = $2 AND log_offset >= $3 AND log_offset < $4
    UNION ALL
    SELECT log_offset, record_value, 1 FROM duplicate_records
    WHERE topic = $1 AND log_partition = $2 AND log_offset >= $3 AND log_offset < $4
    UNION ALL
    SELECT log_offset, record_value, 2 FROM rejected_records
    WHERE topic = $1 AND log_partition = $2 AND log_offset >= $3 AND log_offset < $4
) AS r
ORDER BY log_offset, rank
"""


async def stored_records(
    conn: asyncpg.Connection, topic: str, partition: int, start: int, end: int
) -> AsyncIterator[tuple[int, bytes | None]]:
    """(offset, value) of the records the database holds in [start, end), streamed (call it
    inside a transaction)."""
    last = -1
    async for row in conn.cursor(STORED_RECORDS, topic, partition, start, end, prefetch=2000):
        if row["log_offset"] == last:
            continue
        last = row["log_offset"]
        value = row["record_value"]
        yield last, None if value is None else bytes(value)
