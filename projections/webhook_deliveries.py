"""The webhook deliveries and their attempts: their statuses and outcomes, redelivery,
retention, and what the API and /metrics read of them (the queue the dispatcher claims and
records through is projections/webhook_queue.py).
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
    """Send a delivery again: pending, due now, with a new retry window. False when the
    subscription has no such delivery."""
    found = await conn.fetchval(
        "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = now(),"
        " retry_from = now() WHERE id = $1 AND subscription_id = $2 RETURNING id",
        delivery_id,
        subscription_id,
    )
    return found is not None


async def purge_succeeded(conn: asyncpg.Connection | asyncpg.Pool, days: int) -> int:
    """Delete succeeded deliveries (their attempts by the cascade) older than `days`."""
    done = await conn.fetchval(
        "WITH gone AS (DELETE FROM webhook_deliveries WHERE status = 'succeeded'"
        " AND last_attempt_at < now() - make_interval(days => $1) RETURNING 1)"
        " SELECT count(*) FROM gone",
        days,
    )
    return int(done)


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


async def queue_gauges(conn: asyncpg.Connection | asyncpg.Pool) -> list[QueueGauge]:
    """Per subscription: pending deliveries and the age of the oldest, at scrape time."""
    rows = await conn.fetch(
        "SELECT s.id, count(d.id) AS depth, COALESCE(EXTRACT(EPOCH FROM now()"
        " - min(COALESCE(d.retry_from, d.created_at))), 0)::float8 AS oldest"
        " FROM webhook_subscriptions s LEFT JOIN webhook_deliveries d"
        " ON d.subscription_id = s.id AND d.status = 'pending' GROUP BY s.id ORDER BY s.id"
    )
    return [QueueGauge(r["id"], r["depth"], max(0.0, r["oldest"])) for r in rows]


async def outcome_counts(conn: asyncpg.Connection | asyncpg.Pool) -> list[tuple[UUID, str, int]]:
    rows = await conn.fetch(
        "SELECT subscription_id, outcome, count FROM webhook_outcome_counts"
        " ORDER BY subscription_id, outcome"
    )
    return [(r["subscription_id"], r["outcome"], r["count"]) for r in rows]


def prometheus_text(counts: Sequence[tuple[UUID, str, int]], gauges: Sequence[QueueGauge]) -> str:
    """ledger_webhook_deliveries_total{subscription,outcome} (attempts by outcome, and parked
    deliveries), ledger_webhook_queue_depth and ledger_webhook_oldest_pending_seconds per
    subscription, in the Prometheus text format."""
    lines = [
        "# HELP ledger_webhook_deliveries_total Webhook delivery attempts by outcome (succeeded,"
        " failed, timeout, refused), and deliveries parked after their retry window.",
        "# TYPE ledger_webhook_deliveries_total counter",
        *(
            f'ledger_webhook_deliveries_total{{subscription="{s}",outcome="{o}"}} {n}'
            for s, o, n in counts
        ),
        "# HELP ledger_webhook_queue_depth Pending webhook deliveries of the subscription.",
        "# TYPE ledger_webhook_queue_depth gauge",
        *(
            f'ledger_webhook_queue_depth{{subscription="{g.subscription_id}"}} {g.depth}'
            for g in gauges
        ),
        "# HELP ledger_webhook_oldest_pending_seconds Age of the subscription's oldest pending"
        " webhook delivery (since it was created or redelivered); 0 when none is pending.",
        "# TYPE ledger_webhook_oldest_pending_seconds gauge",
        *(
            f'ledger_webhook_oldest_pending_seconds{{subscription="{g.subscription_id}"}}'
            f" {g.oldest_pending_s!r}"
            for g in gauges
        ),
    ]
    return "\n".join(lines) + "\n"
