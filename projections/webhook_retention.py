"""The webhook dispatcher's retention: succeeded and parked deliveries past their settings,
the deliveries of erased subjects whose proof is purged, and erasure captures no delivery
will open any more. Run by the dispatcher's hourly job (services/webhooks/dispatcher_process.py)
and, for a subject's deliveries, by `consent-ledger retention`.

Design: docs/developers/design/webhooks.md
"""

from __future__ import annotations

import asyncpg


async def purge_succeeded(conn: asyncpg.Connection | asyncpg.Pool, days: int) -> int:
    """Delete succeeded deliveries (their attempts by the cascade) older than `days`."""
    done = await conn.fetchval(
        "WITH gone AS (DELETE FROM webhook_deliveries WHERE status = 'succeeded'"
        " AND last_attempt_at < now() - make_interval(days => $1) RETURNING 1)"
        " SELECT count(*) FROM gone",
        days,
    )
    return int(done)


async def purge_parked(conn: asyncpg.Connection | asyncpg.Pool, days: int) -> int:
    """Delete parked deliveries (their attempts by the cascade) not sent again within `days`
    of their last attempt (LEDGER_WEBHOOK_PARKED_RETENTION_DAYS)."""
    done = await conn.fetchval(
        "WITH gone AS (DELETE FROM webhook_deliveries WHERE status = 'parked'"
        " AND COALESCE(last_attempt_at, created_at) < now() - make_interval(days => $1)"
        " RETURNING 1) SELECT count(*) FROM gone",
        days,
    )
    return int(done)


async def forget_subject(conn: asyncpg.Connection | asyncpg.Pool, subject_id: str) -> int:
    """Delete every delivery of a subject, whatever its status: its erased proof is purged,
    and a delivery keeps no longer than the proof it repeats."""
    status = await conn.execute("DELETE FROM webhook_deliveries WHERE subject_id = $1", subject_id)
    return int(status.rsplit(" ", 1)[-1])


async def purge_purged_subjects(conn: asyncpg.Connection | asyncpg.Pool) -> int:
    """Delete the deliveries of erased subjects whose proof `retention` has purged (those it
    did not reach itself: fanned out after the purge, or made by a lagging dispatcher)."""
    done = await conn.fetchval(
        "WITH gone AS (DELETE FROM webhook_deliveries d USING erasures e"
        " WHERE e.subject_id = d.subject_id AND e.purged_at IS NOT NULL RETURNING 1)"
        " SELECT count(*) FROM gone"
    )
    return int(done)


PURGE_CAPTURES = """
WITH gone AS (
    DELETE FROM webhook_erasure_identifiers c
    -- past the retry window and the grace: no capture outlives it, whatever waits for it
    WHERE c.captured_at < now() - make_interval(hours => $2)
       OR NOT EXISTS (SELECT 1 FROM webhook_deliveries d
                      WHERE d.event_id = c.event_id AND d.status = 'pending')
      AND (
          -- fanned out (the dispatcher's position is past it) and settled, or never wanted
          EXISTS (SELECT 1 FROM journal j JOIN webhook_dispatch_offsets o
                  ON o.log_partition = j.log_partition
                  WHERE j.event_id = c.event_id AND o.next_offset > j.log_offset)
          -- its SubjectErased never reached the log (the erasure failed after capturing)
          OR (c.captured_at < now() - make_interval(hours => $1)
              AND NOT EXISTS (SELECT 1 FROM journal j WHERE j.event_id = c.event_id))
      )
    RETURNING 1
)
SELECT count(*) FROM gone
"""


async def purge_captures(
    conn: asyncpg.Connection | asyncpg.Pool, grace_hours: int, retry_hours: int
) -> int:
    """Delete erasure captures no delivery will open any more: their event's deliveries are
    settled (or none wanted them), or the event is not in the log `grace_hours` after; and
    every capture older than the retry window and the grace (`retry_hours + grace_hours`),
    whatever still waits for it (a delivery of a disabled subscription, a redelivery): those
    deliveries carry `identifiers_withheld` instead."""
    return int(await conn.fetchval(PURGE_CAPTURES, grace_hours, grace_hours + retry_hours))
