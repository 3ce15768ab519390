"""The state feed's outbox (table `state_feed_outbox`): subjects whose current state has yet
to be published on the state topic.

The projector queues a subject in the same transaction as the batch that changed it, so a
crash can never lose a change between the projection and the feed. A feed publisher claims
rows for a lease (FOR UPDATE SKIP LOCKED: several publishers never take the same row), reads
the subjects' facts, publishes, then deletes each row only if no batch touched the subject
after the claim (`changes` unchanged); otherwise it releases the row to publish it again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from projections import subject_state
from projections.state import Fact, FactKey, Position
from schemas.events import NOT_ABOUT_A_SUBJECT

ENQUEUE = """
INSERT INTO state_feed_outbox AS o (subject_id, log_partition, log_offset)
SELECT * FROM unnest($1::text[], $2::int[], $3::bigint[])
ON CONFLICT (subject_id) DO UPDATE SET
    log_partition = EXCLUDED.log_partition,
    log_offset = GREATEST(o.log_offset, EXCLUDED.log_offset),
    changes = o.changes + 1
"""


async def enqueue(conn: asyncpg.Connection, touched: Iterable[tuple[str, Position]]) -> None:
    """Queue the subjects a batch changed (in the batch's transaction), one row each."""
    latest: dict[str, Position] = {}
    for subject_id, position in touched:
        held = latest.get(subject_id)
        if held is None or position > held:
            latest[subject_id] = position
    if not latest:
        return
    # a fixed order, so two projectors' batches lock shared rows in the same order
    subjects = sorted(latest)
    await conn.execute(
        ENQUEUE,
        subjects,
        [latest[s][0] for s in subjects],
        [latest[s][1] for s in subjects],
    )


@dataclass(frozen=True, slots=True)
class Claim:
    subject_id: str
    partition: int
    changes: int
    claimed_until: datetime


CLAIM = """
UPDATE state_feed_outbox o SET claimed_until = now() + make_interval(secs => $2)
FROM (
    SELECT subject_id FROM state_feed_outbox
    WHERE claimed_until IS NULL OR claimed_until < now()
    ORDER BY queued_at
    LIMIT $1
    FOR UPDATE SKIP LOCKED
) AS c
WHERE o.subject_id = c.subject_id
RETURNING o.subject_id, o.log_partition, o.changes, o.claimed_until
"""


async def claim(conn: asyncpg.Connection, limit: int, lease_s: float) -> list[Claim]:
    """Take up to `limit` unclaimed rows, oldest first, for `lease_s` seconds."""
    rows = await conn.fetch(CLAIM, limit, lease_s)
    return [
        Claim(r["subject_id"], r["log_partition"], r["changes"], r["claimed_until"]) for r in rows
    ]


@dataclass(frozen=True, slots=True)
class Loaded:
    """A claimed subject's state and the projected position of its partition."""

    subject_id: str
    partition: int
    next_offset: int
    facts: dict[FactKey, Fact]


async def load(conn: asyncpg.Connection, topic: str, claims: Sequence[Claim]) -> list[Loaded]:
    """The state of every claimed subject, in one query (and so one snapshot)."""
    asked = [(c.subject_id, c.partition) for c in claims]
    loaded = await subject_state.load_many(conn, topic, asked)
    return [Loaded(s, p, loaded[(s, p)][1], loaded[(s, p)][0]) for s, p in asked]


# Both lock their rows in subject order, as the projector's enqueue does, so the two never
# wait on each other in a cycle.
DONE = """
WITH target AS (
    SELECT o.subject_id FROM state_feed_outbox o
    JOIN unnest($1::text[], $2::bigint[]) AS x(subject_id, changes)
        ON o.subject_id = x.subject_id AND o.changes = x.changes
    ORDER BY o.subject_id
    FOR UPDATE OF o
)
DELETE FROM state_feed_outbox o USING target t WHERE o.subject_id = t.subject_id
"""

RELEASE = """
WITH target AS (
    SELECT o.subject_id FROM state_feed_outbox o
    JOIN unnest($1::text[], $2::timestamptz[]) AS x(subject_id, claimed_until)
        ON o.subject_id = x.subject_id AND o.claimed_until = x.claimed_until
    ORDER BY o.subject_id
    FOR UPDATE OF o
)
UPDATE state_feed_outbox o SET claimed_until = NULL
FROM target t WHERE o.subject_id = t.subject_id
"""


async def done(conn: asyncpg.Connection, claims: Sequence[Claim]) -> None:
    """Published: delete the rows no batch touched since the claim, then release the rest.

    Two statements, not one transaction: holding the deleted rows' locks while locking the
    others could deadlock with a projector batch. A crash between them only delays the
    released rows until their lease ends.
    """
    await conn.execute(DONE, [c.subject_id for c in claims], [c.changes for c in claims])
    await release(conn, claims)


async def release(conn: asyncpg.Connection, claims: Sequence[Claim]) -> None:
    """Give claimed rows back (publishing failed, or they changed meanwhile)."""
    await conn.execute(RELEASE, [c.subject_id for c in claims], [c.claimed_until for c in claims])


REFILL = """
INSERT INTO state_feed_outbox AS o (subject_id, log_partition, log_offset)
SELECT DISTINCT ON (subject_id) subject_id, log_partition, log_offset
FROM journal
WHERE NOT event_type = ANY($1::text[])
ORDER BY subject_id, log_partition DESC, log_offset DESC
ON CONFLICT (subject_id) DO UPDATE SET changes = o.changes + 1
"""


async def refill(conn: asyncpg.Connection) -> int:
    """Queue every subject the journal knows (the state topic came back empty, or the purpose
    catalogue changed what each subject's state says); notices and purposes (keyed
    notice/<version>, purpose/<id>) are no subjects."""
    status = await conn.execute(REFILL, list(NOT_ABOUT_A_SUBJECT))
    return int(status.rsplit(" ", 1)[-1])


async def pending(conn: asyncpg.Connection | asyncpg.Pool) -> int:
    count: int = await conn.fetchval("SELECT count(*) FROM state_feed_outbox")
    return count
