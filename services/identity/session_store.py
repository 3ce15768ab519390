"""The `staff_sessions` table: start, find, touch and end the staff sessions of the auditor's
pages (the rules are services/identity/staff_sessions.py). Times come from the caller's clock,
so the timeouts can be tested without waiting."""

from __future__ import annotations

from datetime import datetime
from typing import Final

import asyncpg

from services.identity.staff_sessions import KEY_REVOKED, SessionRow, session_hash

_COLUMNS: Final = "session_hash, key_id, created_at, last_seen_at, ended_at, end_reason"
INSERT: Final = """
INSERT INTO staff_sessions (session_hash, key_id, created_at, last_seen_at, signed_in_from)
VALUES ($1, $2, $3, $3, $4)
"""
FIND: Final = f"SELECT {_COLUMNS} FROM staff_sessions WHERE session_hash = $1"
TOUCH: Final = """
UPDATE staff_sessions SET last_seen_at = greatest(last_seen_at, $2)
WHERE session_hash = $1 AND ended_at IS NULL
"""
END: Final = """
UPDATE staff_sessions SET ended_at = $2, end_reason = $3
WHERE session_hash = $1 AND ended_at IS NULL
"""
#: run in the transaction that revokes the key (services/identity/api_key_store.py)
END_KEY_SESSIONS: Final = f"""
UPDATE staff_sessions SET ended_at = now(), end_reason = '{KEY_REVOKED}'
WHERE key_id = $1 AND ended_at IS NULL
"""

Executor = asyncpg.Connection | asyncpg.Pool


def _row(record: asyncpg.Record) -> SessionRow:
    return SessionRow(
        bytes(record["session_hash"]),
        record["key_id"],
        record["created_at"],
        record["last_seen_at"],
        record["ended_at"],
        record["end_reason"],
    )


async def start(conn: Executor, session_id: str, key_id: str, now: datetime, address: str) -> None:
    await conn.execute(INSERT, session_hash(session_id), key_id, now, address)


async def find(conn: Executor, session_id: str) -> SessionRow | None:
    found = await conn.fetchrow(FIND, session_hash(session_id))
    return _row(found) if found is not None else None


async def touch(conn: Executor, session_id: str, now: datetime) -> None:
    """Record a request of a live session: the idle timeout counts from here."""
    await conn.execute(TOUCH, session_hash(session_id), now)


async def end(conn: Executor, session_id: str, now: datetime, reason: str) -> None:
    """End a live session for `reason` (an ended one keeps its first end)."""
    await conn.execute(END, session_hash(session_id), now, reason)
