"""The webhook_erasure_identifiers table (projections/migrations/0020_webhooks.sql): the
identifiers an erased subject held, captured and sealed before its data key is destroyed, for
the SubjectErased deliveries of subscriptions with include_identifiers (Art. 19 GDPR).
Sealing and opening: services/webhooks/erasure_capture.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
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
