"""The webhook deliveries and their attempts: their statuses and outcomes, redelivery, and
what the API and /metrics read of them (the queue the dispatcher claims and records through
is projections/webhook_queue.py; retention is projections/webhook_retention.py).
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
class Attempt:
    started_at: datetime
    duration_ms: int
    response_code: int | None
    outcome: str
    error: str | None


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
