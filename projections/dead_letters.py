"""Dead letters (table `dead_letter_outbox`): records of the event topic the projector refused
(undecodable, or without a valid MAC), queued in the batch transaction that keeps them in
`rejected_records` and published on the dead-letter topic by services/projector/dead_letter_feed.py.

A record goes out with its original key and value bytes and headers naming where it came from
and why it was refused (`reason`, one of REASONS, and the `error` detail). The row is marked
published only after the broker's acknowledgement, so a crash never loses a dead letter; it
may publish one twice (at least once).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import asyncpg

#: the headers of a dead-letter record, each UTF-8 text
SOURCE_TOPIC: Final = "source_topic"
SOURCE_PARTITION: Final = "source_partition"
SOURCE_OFFSET: Final = "source_offset"
ERROR: Final = "error"
REASON: Final = "reason"

#: why a record was refused: the `reason` header and the column of rejected_records
#: the codec cannot read it (no value, unknown schema, corrupt body)
UNDECODABLE: Final = "undecodable-record"
#: at or above its partition's MAC cut-off without a valid MAC (schemas/record_mac.py)
UNAUTHENTICATED: Final = "unauthenticated-record"
#: a placeholder `restore-log` wrote where the database held no record
RESTORE_PLACEHOLDER: Final = "restore-placeholder"
REASONS: Final = (UNDECODABLE, UNAUTHENTICATED, RESTORE_PLACEHOLDER)
#: errors are short codec messages; a bound keeps a header from growing without limit
MAX_ERROR_BYTES: Final = 2000


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One refused record, where it was in the event topic, and why."""

    topic: str
    partition: int
    offset: int
    error: str
    key: bytes | None
    value: bytes | None
    reason: str


def headers(letter: DeadLetter) -> list[tuple[str, bytes]]:
    return [
        (SOURCE_TOPIC, letter.topic.encode("utf-8")),
        (SOURCE_PARTITION, str(letter.partition).encode("ascii")),
        (SOURCE_OFFSET, str(letter.offset).encode("ascii")),
        (ERROR, letter.error.encode("utf-8")[:MAX_ERROR_BYTES]),
        (REASON, letter.reason.encode("ascii")),
    ]


def from_record(
    key: bytes | None, value: bytes | None, record_headers: Sequence[tuple[str, bytes]]
) -> DeadLetter:
    """A record read from the dead-letter topic, back as the letter it carries (a letter
    published before reasons existed was undecodable)."""
    found = {name: raw.decode("utf-8", "replace") for name, raw in record_headers}
    return DeadLetter(
        found[SOURCE_TOPIC],
        int(found[SOURCE_PARTITION]),
        int(found[SOURCE_OFFSET]),
        found[ERROR],
        key,
        value,
        found.get(REASON, UNDECODABLE),
    )


ENQUEUE = """
INSERT INTO dead_letter_outbox (topic, log_partition, log_offset, error, record_key, record_value,
                                reason)
SELECT $1, * FROM unnest($2::int[], $3::bigint[], $4::text[], $5::bytea[], $6::bytea[], $7::text[])
ON CONFLICT DO NOTHING
"""


async def enqueue(conn: asyncpg.Connection, letters: Sequence[DeadLetter]) -> None:
    """Queue letters of one topic, in the batch's transaction."""
    if letters:
        await conn.execute(
            ENQUEUE,
            letters[0].topic,
            [x.partition for x in letters],
            [x.offset for x in letters],
            [x.error for x in letters],
            [x.key for x in letters],
            [x.value for x in letters],
            [x.reason for x in letters],
        )


@dataclass(frozen=True, slots=True)
class Claim:
    letter: DeadLetter
    claimed_until: datetime


CLAIM = """
UPDATE dead_letter_outbox o SET claimed_until = now() + make_interval(secs => $3)
FROM (
    SELECT topic, log_partition, log_offset FROM dead_letter_outbox
    WHERE topic = $1 AND published_at IS NULL AND purged_at IS NULL
      AND (claimed_until IS NULL OR claimed_until < now())
    ORDER BY queued_at, log_partition, log_offset
    LIMIT $2
    FOR UPDATE SKIP LOCKED
) AS c
WHERE o.topic = c.topic AND o.log_partition = c.log_partition AND o.log_offset = c.log_offset
RETURNING o.log_partition, o.log_offset, o.error, o.record_key, o.record_value, o.reason,
          o.claimed_until
"""


async def claim(conn: asyncpg.Connection, topic: str, limit: int, lease_s: float) -> list[Claim]:
    """Take up to `limit` unpublished letters, oldest first, for `lease_s` seconds."""
    rows = await conn.fetch(CLAIM, topic, limit, lease_s)
    claims = [
        Claim(
            DeadLetter(
                topic,
                r["log_partition"],
                r["log_offset"],
                r["error"],
                None if r["record_key"] is None else bytes(r["record_key"]),
                None if r["record_value"] is None else bytes(r["record_value"]),
                r["reason"],
            ),
            r["claimed_until"],
        )
        for r in rows
    ]
    return sorted(claims, key=lambda c: (c.letter.partition, c.letter.offset))


PUBLISHED = """
UPDATE dead_letter_outbox o
SET published_at = now(), claimed_until = NULL, dead_letter_partition = x.dp,
    dead_letter_offset = x.dof
FROM unnest($2::int[], $3::bigint[], $4::int[], $5::bigint[]) AS x(p, o, dp, dof)
WHERE o.topic = $1 AND o.log_partition = x.p AND o.log_offset = x.o AND o.published_at IS NULL
"""


async def published(
    conn: asyncpg.Connection, topic: str, sent: Sequence[tuple[DeadLetter, int, int]]
) -> None:
    """Mark letters acknowledged at (dead-letter partition, offset); the first mark stays."""
    await conn.execute(
        PUBLISHED,
        topic,
        [x.partition for x, _, _ in sent],
        [x.offset for x, _, _ in sent],
        [p for _, p, _ in sent],
        [o for _, _, o in sent],
    )


RELEASE = """
UPDATE dead_letter_outbox o SET claimed_until = NULL
FROM unnest($2::int[], $3::bigint[], $4::timestamptz[]) AS x(p, o, until)
WHERE o.topic = $1 AND o.log_partition = x.p AND o.log_offset = x.o AND o.claimed_until = x.until
"""


async def release(conn: asyncpg.Connection, topic: str, claims: Sequence[Claim]) -> None:
    """Give claimed letters back (publishing failed)."""
    await conn.execute(
        RELEASE,
        topic,
        [c.letter.partition for c in claims],
        [c.letter.offset for c in claims],
        [c.claimed_until for c in claims],
    )


#: every dead letter ever queued, purged ones included (their outbox rows stay, without the
#: record: services/proof/dead_letter_retention.py), so the total never goes down
COUNTS = """
SELECT (SELECT count(*) FROM dead_letter_outbox WHERE topic = $1) AS total,
       (SELECT count(*) FROM dead_letter_outbox
        WHERE topic = $1 AND published_at IS NULL AND purged_at IS NULL) AS unpublished
"""


async def counts(conn: asyncpg.Connection | asyncpg.Pool, topic: str) -> tuple[int, int]:
    """(dead letters ever, those not yet acknowledged by the dead-letter topic and not purged)."""
    row = await conn.fetchrow(COUNTS, topic)
    assert row is not None
    return int(row["total"]), int(row["unpublished"])


#: a rejected record is due when it is old, or was purged before (a rebuild wrote it again)
DUE_REJECTED: Final = """
rejected_records r WHERE r.topic = $1 AND (r.rejected_at < $2 OR EXISTS (
    SELECT 1 FROM dead_letter_outbox o
    WHERE o.topic = r.topic AND o.log_partition = r.log_partition
      AND o.log_offset = r.log_offset AND o.purged_at IS NOT NULL))
"""
COUNT_DUE: Final = f"""
SELECT (SELECT count(*) FROM {DUE_REJECTED}) AS rejected,
       (SELECT count(*) FROM dead_letter_outbox
        WHERE topic = $1 AND queued_at < $2 AND purged_at IS NULL) AS letters
"""
PURGE_REJECTED: Final = f"DELETE FROM {DUE_REJECTED}"
PURGE_LETTERS: Final = """
UPDATE dead_letter_outbox
SET record_key = NULL, record_value = NULL, error = $3, purged_at = now(), claimed_until = NULL
WHERE topic = $1 AND queued_at < $2 AND purged_at IS NULL
"""


async def count_due(conn: asyncpg.Connection, topic: str, before: datetime) -> tuple[int, int]:
    """(rejected records, outbox rows) that `purge_due` would purge now."""
    row = await conn.fetchrow(COUNT_DUE, topic, before)
    assert row is not None
    return int(row["rejected"]), int(row["letters"])


def _count(status: str) -> int:
    return int(status.rsplit(" ", 1)[-1])


async def purge_due(
    conn: asyncpg.Connection, topic: str, before: datetime, error: str
) -> tuple[int, int]:
    """Delete the due rejected records and strip the record and error (kept as `error`) from
    the outbox rows queued before `before`; returns how many of each."""
    rejected = _count(await conn.execute(PURGE_REJECTED, topic, before))
    letters = _count(await conn.execute(PURGE_LETTERS, topic, before, error))
    return rejected, letters
