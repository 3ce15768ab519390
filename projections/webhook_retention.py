"""The webhook deliveries' retention: succeeded and parked deliveries past their settings, and
the deliveries of erased subjects whose proof is purged. Run by the dispatcher's hourly job
(services/webhooks/dispatcher_process.py, which also forgets the erasure captures no delivery
will open: services/webhooks/erasure_capture.py) and, for a subject's deliveries, by
`consent-ledger retention`.

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
