"""The webhook deliveries and their attempts: which are due (log order per subject per
subscription), recording an attempt with its outcome count and the subscription's health in
one transaction, redelivery, and what the API and /metrics read of them (retention:
projections/webhook_retention.py).
The same concept as services/api/webhook_deliveries.py, on the projections' side.

Design: docs/developers/design/webhooks.md
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from uuid import UUID

import asyncpg

PENDING: Final = "pending"
SUCCEEDED: Final = "succeeded"
PARKED: Final = "parked"
STATUSES: Final = (PENDING, SUCCEEDED, PARKED)
#: an attempt's outcome (webhook_attempts.outcome); PARKED is counted beside them
FAILED: Final = "failed"
TIMEOUT: Final = "timeout"
REFUSED: Final = "refused"


@dataclass(frozen=True, slots=True)
class Due:
    """A delivery that may be sent now: the earliest pending one of its subject."""

    id: UUID
    subscription_id: UUID
    event_id: UUID
    event_type: str
    subject_id: str
    payload: dict[str, Any]
    attempts: int
    retry_from: datetime
    position: tuple[int, int]
    #: attempts made since retry_from: what the retry schedule counts
    retry_attempts: int = 0


@dataclass(frozen=True, slots=True)
class Attempt:
    started_at: datetime
    duration_ms: int
    response_code: int | None
    outcome: str
    error: str | None


# per subject the earliest pending delivery in log order (the partial index's order); sent only
# once due, so a later one of the same subject always waits for it
DUE = """
SELECT * FROM (
    SELECT DISTINCT ON (subject_id) id, subscription_id, event_id, event_type, subject_id,
           payload::text AS payload, attempts, COALESCE(retry_from, created_at) AS retry_from,
           next_attempt_at, log_partition, log_offset, attempts - retry_base AS retry_attempts
    FROM webhook_deliveries
    WHERE subscription_id = $1 AND status = 'pending'
    ORDER BY subject_id, log_partition, log_offset
) AS head
WHERE next_attempt_at <= now()
ORDER BY next_attempt_at
LIMIT $2
"""


async def due(
    conn: asyncpg.Connection | asyncpg.Pool, subscription_id: UUID, limit: int
) -> list[Due]:
    rows = await conn.fetch(DUE, subscription_id, limit)
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
            r["retry_attempts"],
        )
        for r in rows
    ]


@dataclass(frozen=True, slots=True)
class Target:
    """Where and how a subscription's deliveries go, read at delivery time (an edit applies
    to the next attempt)."""

    url: str
    include_identifiers: bool
    enabled: bool


async def target(conn: asyncpg.Connection | asyncpg.Pool, subscription_id: UUID) -> Target | None:
    row = await conn.fetchrow(
        "SELECT url, include_identifiers, enabled FROM webhook_subscriptions WHERE id = $1",
        subscription_id,
    )
    return None if row is None else Target(row["url"], row["include_identifiers"], row["enabled"])


async def defer(conn: asyncpg.Connection | asyncpg.Pool, delivery_id: UUID, seconds: float) -> None:
    """Move a pending delivery's next attempt later without counting an attempt."""
    await conn.execute(
        "UPDATE webhook_deliveries SET next_attempt_at = now() + make_interval(secs => $2)"
        " WHERE id = $1 AND status = 'pending'",
        delivery_id,
        seconds,
    )


async def busy_subscriptions(conn: asyncpg.Connection | asyncpg.Pool) -> list[UUID]:
    """Enabled subscriptions with a pending delivery due now."""
    rows = await conn.fetch(
        "SELECT s.id FROM webhook_subscriptions s WHERE s.enabled AND EXISTS (SELECT 1 FROM"
        " webhook_deliveries d WHERE d.subscription_id = s.id AND d.status = 'pending'"
        " AND d.next_attempt_at <= now())"
    )
    return [r["id"] for r in rows]


async def next_due_at(conn: asyncpg.Connection | asyncpg.Pool) -> datetime | None:
    """The earliest time a pending delivery of an enabled subscription falls due."""
    value: datetime | None = await conn.fetchval(
        "SELECT min(d.next_attempt_at) FROM webhook_deliveries d JOIN webhook_subscriptions s"
        " ON s.id = d.subscription_id WHERE s.enabled AND d.status = 'pending'"
    )
    return value


async def record(
    pool: asyncpg.Pool, delivery: Due, attempt: Attempt, next_at: datetime | None
) -> bool:
    """Record an attempt in one transaction: the delivery's new status (succeeded, pending
    until `next_at`, or parked when `next_at` is None), the attempt row, the outcome count and
    the subscription's health. False when the delivery is gone (its subscription deleted) or
    no longer pending."""
    succeeded = attempt.outcome == SUCCEEDED
    status = SUCCEEDED if succeeded else PENDING if next_at is not None else PARKED
    async with pool.acquire() as conn, conn.transaction():
        number = await conn.fetchval(
            "UPDATE webhook_deliveries SET attempts = attempts + 1, status = $2,"
            " next_attempt_at = $3, last_attempt_at = $4 WHERE id = $1 AND status = 'pending'"
            " RETURNING attempts",
            delivery.id,
            status,
            next_at if status == PENDING else None,
            attempt.started_at,
        )
        if number is None:
            return False
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


async def redeliver(
    conn: asyncpg.Connection | asyncpg.Pool, subscription_id: UUID, delivery_id: UUID
) -> bool:
    """Send a delivery again: pending, due now, with a new retry window whose schedule starts
    again from its first step (retry_base: the attempts made before). False when the
    subscription has no such delivery."""
    found = await conn.fetchval(
        "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = now(),"
        " retry_from = now(), retry_base = attempts WHERE id = $1 AND subscription_id = $2"
        " RETURNING id",
        delivery_id,
        subscription_id,
    )
    return found is not None


LISTING = """
SELECT d.id, d.event_id, d.event_type, d.subject_id, d.status, d.attempts, d.created_at,
       d.next_attempt_at, d.last_attempt_at,
       COALESCE((SELECT json_agg(json_build_object(
                    'attempt', a.attempt, 'started_at', a.started_at,
                    'duration_ms', a.duration_ms, 'response_code', a.response_code,
                    'outcome', a.outcome, 'error', a.error) ORDER BY a.attempt)
                 FROM webhook_attempts a WHERE a.delivery_id = d.id), '[]')::text AS tries
FROM webhook_deliveries d
WHERE d.subscription_id = $1 AND ($2::text IS NULL OR d.status = $2)
  AND ($3::timestamptz IS NULL OR (d.created_at, d.id) < ($3, $4::uuid))
ORDER BY d.created_at DESC, d.id DESC
LIMIT $5
"""


@dataclass(frozen=True, slots=True)
class Listed:
    id: UUID
    created_at: datetime
    body: dict[str, Any]


async def listing(
    conn: asyncpg.Connection | asyncpg.Pool,
    subscription_id: UUID,
    *,
    status: str | None,
    before: tuple[datetime, UUID] | None,
    limit: int,
) -> list[Listed]:
    """A subscription's deliveries, newest first, each with its attempts."""
    at, last = before if before is not None else (None, None)
    rows = await conn.fetch(LISTING, subscription_id, status, at, last, limit)
    return [
        Listed(
            r["id"],
            r["created_at"],
            {
                "id": str(r["id"]),
                "event_id": str(r["event_id"]),
                "event_type": r["event_type"],
                "subject_id": r["subject_id"],
                "status": r["status"],
                "attempt_count": r["attempts"],
                "created_at": r["created_at"].isoformat(),
                "next_attempt_at": _iso(r["next_attempt_at"]),
                "last_attempt_at": _iso(r["last_attempt_at"]),
                "attempts": json.loads(r["tries"]),
            },
        )
        for r in rows
    ]


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


@dataclass(frozen=True, slots=True)
class QueueGauge:
    subscription_id: UUID
    depth: int
    oldest_pending_s: float


#: the index webhook_deliveries_pending_age answers both per subscription
QUEUE_GAUGES: Final = """
SELECT s.id, count(d.id) AS depth,
       COALESCE(EXTRACT(EPOCH FROM now() - min(COALESCE(d.retry_from, d.created_at))),
                0)::float8 AS oldest
FROM webhook_subscriptions s
LEFT JOIN webhook_deliveries d ON d.subscription_id = s.id AND d.status = 'pending'
WHERE s.enabled
GROUP BY s.id ORDER BY s.id
"""


async def queue_gauges(conn: asyncpg.Connection | asyncpg.Pool) -> list[QueueGauge]:
    """Per enabled subscription: pending deliveries and the age of the oldest, at scrape
    time. A disabled subscription's deliveries wait by an administrator's decision: counting
    them would raise the alerts meant for receivers that fail."""
    rows = await conn.fetch(QUEUE_GAUGES)
    return [QueueGauge(r["id"], r["depth"], max(0.0, r["oldest"])) for r in rows]


async def outcome_counts(conn: asyncpg.Connection | asyncpg.Pool) -> list[tuple[UUID, str, int]]:
    rows = await conn.fetch(
        "SELECT subscription_id, outcome, count FROM webhook_outcome_counts"
        " ORDER BY subscription_id, outcome"
    )
    return [(r["subscription_id"], r["outcome"], r["count"]) for r in rows]


def prometheus_text(counts: Sequence[tuple[UUID, str, int]], gauges: Sequence[QueueGauge]) -> str:
    """ledger_webhook_attempts_total{subscription,outcome} (attempts by outcome),
    ledger_webhook_parked_total{subscription} (deliveries parked), and per enabled
    subscription ledger_webhook_queue_depth and ledger_webhook_oldest_pending_seconds, in the
    Prometheus text format. `counts` are webhook_outcome_counts' rows (PARKED among them)."""
    lines = [
        "# HELP ledger_webhook_attempts_total Webhook delivery attempts by outcome (succeeded,"
        " failed, timeout, refused).",
        "# TYPE ledger_webhook_attempts_total counter",
        *(
            f'ledger_webhook_attempts_total{{subscription="{s}",outcome="{o}"}} {n}'
            for s, o, n in counts
            if o != PARKED
        ),
        "# HELP ledger_webhook_parked_total Webhook deliveries parked after their retry window.",
        "# TYPE ledger_webhook_parked_total counter",
        *(
            f'ledger_webhook_parked_total{{subscription="{s}"}} {n}'
            for s, o, n in counts
            if o == PARKED
        ),
        "# HELP ledger_webhook_queue_depth Pending webhook deliveries of the enabled subscription.",
        "# TYPE ledger_webhook_queue_depth gauge",
        *(
            f'ledger_webhook_queue_depth{{subscription="{g.subscription_id}"}} {g.depth}'
            for g in gauges
        ),
        "# HELP ledger_webhook_oldest_pending_seconds Age of the enabled subscription's oldest"
        " pending webhook delivery (since it was created or redelivered); 0 when none is"
        " pending.",
        "# TYPE ledger_webhook_oldest_pending_seconds gauge",
        *(
            f'ledger_webhook_oldest_pending_seconds{{subscription="{g.subscription_id}"}}'
            f" {g.oldest_pending_s!r}"
            for g in gauges
        ),
    ]
    return "\n".join(lines) + "\n"
