"""The deliveries' queue: claiming a subscription's due heads (one per subject, for a lease),
releasing a subject's next delivery once its head settled, and recording an attempt with its
outcome count and the subscription's health, each in one short transaction.

Design: docs/developers/design/webhooks.md
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from uuid import UUID, uuid4

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from projections.webhook_deliveries import PARKED, PENDING, SUCCEEDED, Attempt


@dataclass(frozen=True, slots=True)
class Due:
    """A delivery claimed for sending: the earliest pending one of its subject, held under
    `claim` until its lease runs out."""

    id: UUID
    subscription_id: UUID
    event_id: UUID
    event_type: str
    subject_id: str
    payload: dict[str, Any]
    attempts: int
    retry_from: datetime
    position: tuple[int, int]
    claim: UUID
    #: attempts made since retry_from (its latest redelivery): what the retry schedule counts
    retry_attempts: int


# A pending delivery that may be claimed now: due, unclaimed (or its lease ran out), the
# earliest pending one of its subject, and no other of its subject claimed (a redelivery can
# make an earlier one pending while a later one is in flight). Only a subject's head carries a
# next_attempt_at (RELEASE), so this is a range scan of `webhook_deliveries_ready` over heads.
CLAIMABLE = """
d.status = 'pending' AND d.next_attempt_at <= now()
AND (d.claimed_until IS NULL OR d.claimed_until < now())
AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e
                WHERE e.subscription_id = d.subscription_id AND e.subject_id = d.subject_id
                  AND e.status = 'pending' AND e.id <> d.id
                  AND ((e.log_partition, e.log_offset) < (d.log_partition, d.log_offset)
                       OR e.claimed_until >= now()))
"""

CLAIM = f"""
WITH picked AS (
    SELECT d.id FROM webhook_deliveries d
    WHERE d.subscription_id = $1 AND {CLAIMABLE}
    ORDER BY d.next_attempt_at
    LIMIT $2
    FOR UPDATE OF d SKIP LOCKED
)
UPDATE webhook_deliveries d
SET claimed_until = now() + make_interval(secs => $3), claim = $4
FROM picked WHERE d.id = picked.id
RETURNING d.id, d.subscription_id, d.event_id, d.event_type, d.subject_id,
          d.payload::text AS payload, d.attempts, COALESCE(d.retry_from, d.created_at)
          AS retry_from, d.log_partition, d.log_offset, d.next_attempt_at,
          d.attempts - d.retry_base AS retry_attempts
"""


async def claim(
    conn: asyncpg.Connection | asyncpg.Pool, subscription_id: UUID, limit: int, lease_s: float
) -> list[Due]:
    """Claim up to `limit` of the subscription's due heads (one per subject) for `lease_s`
    seconds, earliest due first; rows another dispatcher is claiming are skipped."""
    token = uuid4()
    rows = await conn.fetch(CLAIM, subscription_id, limit, lease_s, token)
    return [
        Due(
            r["id"],
            r["subscription_id"],
            r["event_id"],
            r["event_type"],
            r["subject_id"],
            json.loads(r["payload"]),
            r["attempts"],
            r["retry_from"],
            (r["log_partition"], r["log_offset"]),
            token,
            r["retry_attempts"],
        )
        for r in sorted(rows, key=lambda r: r["next_attempt_at"])
    ]


# Per (subscription, subject): give the earliest pending delivery a next_attempt_at if it has
# none (the head after its predecessor settled, or a new subject's first delivery). Run under
# the pair's transaction lock (lock_subjects), so fan-out and recording never both miss it.
RELEASE = """
UPDATE webhook_deliveries d SET next_attempt_at = now()
FROM (
    SELECT DISTINCT ON (w.subscription_id, w.subject_id) w.id
    FROM unnest($1::uuid[], $2::text[]) AS p(subscription_id, subject_id)
    JOIN webhook_deliveries w
      ON w.subscription_id = p.subscription_id AND w.subject_id = p.subject_id
     AND w.status = 'pending'
    ORDER BY w.subscription_id, w.subject_id, w.log_partition, w.log_offset
) AS head
WHERE d.id = head.id AND d.next_attempt_at IS NULL
"""

#: a connection in the transaction that locks and releases queues
InTransaction = asyncpg.Connection | PoolConnectionProxy
#: advisory lock class of a (subscription, subject) queue's transaction locks ("WH")
QUEUE_LOCKS: Final = 0x5748


async def lock_subjects(conn: InTransaction, pairs: Sequence[tuple[UUID, str]]) -> None:
    """Take the queues' transaction locks, in one order (no deadlock between transactions)."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock($3, k) FROM (SELECT DISTINCT hashtext(s::text || '/' || j)"
        " AS k FROM unnest($1::uuid[], $2::text[]) AS p(s, j) ORDER BY k) AS keys",
        [s for s, _ in pairs],
        [j for _, j in pairs],
        QUEUE_LOCKS,
    )


async def release_heads(conn: InTransaction, pairs: Sequence[tuple[UUID, str]]) -> None:
    """Make each queue's head due now if it waited behind a delivery that has settled."""
    await conn.execute(RELEASE, [s for s, _ in pairs], [j for _, j in pairs])


async def defer(conn: asyncpg.Connection | asyncpg.Pool, delivery: Due, seconds: float) -> None:
    """Give a claimed delivery back with its next attempt later, counting no attempt."""
    await conn.execute(
        "UPDATE webhook_deliveries SET next_attempt_at = now() + make_interval(secs => $3),"
        " claimed_until = NULL, claim = NULL WHERE id = $1 AND claim = $2 AND status = 'pending'",
        delivery.id,
        delivery.claim,
        seconds,
    )


async def ready_subscriptions(conn: asyncpg.Connection | asyncpg.Pool) -> list[UUID]:
    """Enabled subscriptions with a delivery that may be claimed now."""
    rows = await conn.fetch(
        "SELECT s.id FROM webhook_subscriptions s WHERE s.enabled AND EXISTS (SELECT 1 FROM"
        f" webhook_deliveries d WHERE d.subscription_id = s.id AND {CLAIMABLE})"
    )
    return [r["id"] for r in rows]


async def seconds_to_next_due(conn: asyncpg.Connection | asyncpg.Pool) -> float | None:
    """Seconds (by the database's clock) until a head of an enabled subscription falls due or
    a claim on one runs out, counting only what is still ahead: what is due already is
    claimed, or waits for a record that wakes the dispatcher."""
    value: float | None = await conn.fetchval(
        "SELECT EXTRACT(EPOCH FROM min(LEAST("
        " CASE WHEN d.next_attempt_at > now() THEN d.next_attempt_at END,"
        " CASE WHEN d.claimed_until > now() THEN d.claimed_until END)) - now())::float8"
        " FROM webhook_deliveries d JOIN webhook_subscriptions s ON s.id = d.subscription_id"
        " WHERE s.enabled AND d.status = 'pending' AND d.next_attempt_at IS NOT NULL"
    )
    return value


async def record(
    pool: asyncpg.Pool, delivery: Due, attempt: Attempt, next_at: datetime | None
) -> bool:
    """Record an attempt in one transaction: the delivery's new status (succeeded, pending
    until `next_at`, or parked when `next_at` is None) with its claim let go, the next
    delivery of its subject released once it settled, the attempt row, the outcome count and
    the subscription's health. False when the delivery is gone (its subscription deleted), no
    longer pending, or claimed by another since its lease ran out."""
    succeeded = attempt.outcome == SUCCEEDED
    status = SUCCEEDED if succeeded else PENDING if next_at is not None else PARKED
    queue = [(delivery.subscription_id, delivery.subject_id)]
    async with pool.acquire() as conn, conn.transaction():
        await lock_subjects(conn, queue)
        number = await conn.fetchval(
            "UPDATE webhook_deliveries SET attempts = attempts + 1, status = $2,"
            " next_attempt_at = $3, last_attempt_at = $4, claimed_until = NULL, claim = NULL"
            " WHERE id = $1 AND status = 'pending' AND claim = $5 RETURNING attempts",
            delivery.id,
            status,
            next_at if status == PENDING else None,
            attempt.started_at,
            delivery.claim,
        )
        if number is None:
            return False
        if status != PENDING:
            await release_heads(conn, queue)
        await conn.execute(
            "INSERT INTO webhook_attempts (delivery_id, attempt, started_at, duration_ms,"
            " response_code, outcome, error) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            delivery.id,
            number,
            attempt.started_at,
            attempt.duration_ms,
            attempt.response_code,
            attempt.outcome,
            attempt.error,
        )
        outcomes = [attempt.outcome, *([PARKED] if status == PARKED else [])]
        await conn.execute(
            "INSERT INTO webhook_outcome_counts AS c (subscription_id, outcome, count)"
            " SELECT $1, o, 1 FROM unnest($2::text[]) AS o ON CONFLICT (subscription_id, outcome)"
            " DO UPDATE SET count = c.count + 1",
            delivery.subscription_id,
            outcomes,
        )
        if succeeded:
            await conn.execute(
                "UPDATE webhook_subscriptions SET failing_since = NULL, last_success_at = $2"
                " WHERE id = $1",
                delivery.subscription_id,
                attempt.started_at,
            )
        elif status == PARKED:
            await conn.execute(
                "UPDATE webhook_subscriptions SET failing_since = COALESCE(failing_since, now())"
                " WHERE id = $1",
                delivery.subscription_id,
            )
    return True


async def event_settled(conn: asyncpg.Connection | asyncpg.Pool, event_id: UUID) -> bool:
    """Every delivery of an event has succeeded or been parked."""
    pending = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM webhook_deliveries WHERE event_id = $1"
        " AND status = 'pending')",
        event_id,
    )
    return not pending
