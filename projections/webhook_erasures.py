"""The webhook_erasure_identifiers table (projections/migrations/0020_webhooks.sql): the
identifiers an erased subject held, captured and sealed before its data key is destroyed, for
the SubjectErased deliveries of subscriptions with include_identifiers (Art. 19 GDPR).
Sealing and opening: services/webhooks/erasure_capture.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final
from uuid import UUID

import asyncpg

INSERT: Final = """
INSERT INTO webhook_erasure_identifiers (event_id, subject_id, master_key_id, wrapped_key, sealed)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (event_id) DO NOTHING
"""
SELECT: Final = """
SELECT event_id, subject_id, master_key_id, wrapped_key, sealed, captured_at
FROM webhook_erasure_identifiers WHERE event_id = $1
"""

#: captures no delivery will ever open, older than $1: the event never landed (not in the
#: journal nor in erasures, though every partition's projection has since caught up with its
#: log past the grace period, so it would be there), or it landed and the dispatcher read past
#: it without a delivery left to make (no subscription wanted it any more, its subscriptions
#: were deleted, or every delivery is done and `forget` did not run). A pending delivery of the
#: event to a subscription with include_identifiers keeps the capture, but never past the retry
#: window $2 and the grace: a delivery still waiting then (its subscription disabled, or
#: redelivered later) says `identifiers_withheld` instead.
DELETE_ORPHANS: Final = """
DELETE FROM webhook_erasure_identifiers c
WHERE c.captured_at < now() - $1::interval
  AND (
    c.captured_at < now() - $1::interval - $2::interval
    OR (
      NOT EXISTS (
        SELECT 1 FROM webhook_deliveries d
        JOIN webhook_subscriptions s ON s.id = d.subscription_id
        WHERE d.event_id = c.event_id AND d.status = 'pending' AND s.include_identifiers
      )
      AND (
        (NOT EXISTS (SELECT 1 FROM journal j WHERE j.event_id = c.event_id)
         AND NOT EXISTS (SELECT 1 FROM erasures e WHERE e.event_id = c.event_id)
         AND EXISTS (SELECT 1 FROM projector_partitions)
         AND NOT EXISTS (
            SELECT 1 FROM projector_partitions p
            WHERE p.caught_up_at IS NULL OR p.caught_up_at <= c.captured_at + $1::interval
         ))
        OR EXISTS (
            SELECT 1 FROM journal j
            JOIN webhook_dispatch_offsets o ON o.log_partition = j.log_partition
            WHERE j.event_id = c.event_id AND o.next_offset > j.log_offset
        )
      )
    )
  )
RETURNING c.event_id
"""

#: `rewrap-keys`: captures whose key is wrapped by another master key than the current one
NOT_UNDER: Final = """
SELECT event_id, master_key_id, wrapped_key FROM webhook_erasure_identifiers
WHERE master_key_id <> $1 LIMIT $2
"""
REWRAP: Final = """
UPDATE webhook_erasure_identifiers SET master_key_id = $3, wrapped_key = $4
WHERE event_id = $1 AND master_key_id = $2
"""


@dataclass(frozen=True, slots=True)
class CapturedRow:
    event_id: UUID
    subject_id: str
    master_key_id: str
    wrapped_key: bytes
    sealed: bytes
    captured_at: datetime


Conn = asyncpg.Connection | asyncpg.Pool


async def insert(
    conn: Conn, event_id: UUID, subject_id: str, master_key_id: str, wrapped: bytes, sealed: bytes
) -> None:
    await conn.execute(INSERT, event_id, subject_id, master_key_id, wrapped, sealed)


async def get(conn: Conn, event_id: UUID) -> CapturedRow | None:
    r = await conn.fetchrow(SELECT, event_id)
    if r is None:
        return None
    return CapturedRow(
        r["event_id"],
        r["subject_id"],
        r["master_key_id"],
        bytes(r["wrapped_key"]),
        bytes(r["sealed"]),
        r["captured_at"],
    )


async def delete(conn: Conn, event_id: UUID) -> bool:
    status = await conn.execute(
        "DELETE FROM webhook_erasure_identifiers WHERE event_id = $1", event_id
    )
    return bool(status != "DELETE 0")


async def delete_orphans(conn: Conn, older_than: timedelta, retry_window: timedelta) -> list[UUID]:
    """Delete the captures no delivery will open (DELETE_ORPHANS); their event ids."""
    return [r["event_id"] for r in await conn.fetch(DELETE_ORPHANS, older_than, retry_window)]


async def wrapped_not_under(
    conn: asyncpg.Connection, master_key_id: str, limit: int
) -> list[tuple[UUID, str, bytes]]:
    """Up to `limit` captures whose key another master key than `master_key_id` wraps: (event
    id, master key id, wrapped key)."""
    rows = await conn.fetch(NOT_UNDER, master_key_id, limit)
    return [(r["event_id"], r["master_key_id"], bytes(r["wrapped_key"])) for r in rows]


async def rewrap(conn: asyncpg.Connection, updates: list[tuple[UUID, str, str, bytes]]) -> None:
    """(event id, old master key id, new master key id, wrapped key) each."""
    await conn.executemany(REWRAP, updates)
