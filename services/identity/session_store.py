"""The `staff_sessions` table: start, find, touch and end the staff sessions of the auditor's
pages (the rules are services/identity/staff_sessions.py). Times come from the caller's clock,
so the timeouts can be tested without waiting."""

from __future__ import annotations

from datetime import datetime
from typing import Final

import asyncpg

from services.identity.staff_sessions import (
    KEY_REVOKED,
    SessionKey,
    SessionRow,
    Timeouts,
    session_hash,
)

_COLUMNS: Final = "session_hash, key_id, created_at, last_seen_at, ended_at, end_reason"
INSERT: Final = """
INSERT INTO staff_sessions (session_hash, key_id, created_at, last_seen_at, signed_in_from)
VALUES ($1, $2, $3, $3, $4)
"""
FIND: Final = f"SELECT {_COLUMNS} FROM staff_sessions WHERE session_hash = $1"
#: the session and its key's row as they are now, in one round trip; a session still within
#: both timeouts and with its key unrevoked is touched in the same statement (the rows
#: returned are those before the touch, which the timeouts are judged on)
CHECK: Final = f"""
WITH found AS (
    SELECT {", ".join("s." + c for c in _COLUMNS.split(", "))},
           k.name AS key_name, k.scopes, k.revoked_at
    FROM staff_sessions s JOIN api_keys k ON k.key_id = s.key_id
    WHERE s.session_hash = $1
), touched AS (
    UPDATE staff_sessions s SET last_seen_at = greatest(s.last_seen_at, $2::timestamptz)
    FROM api_keys k
    WHERE s.session_hash = $1 AND k.key_id = s.key_id AND k.revoked_at IS NULL
      AND s.ended_at IS NULL AND s.last_seen_at > $2::timestamptz - $3::interval
      AND s.created_at > $2::timestamptz - $4::interval
)
SELECT * FROM found
"""
#: sessions that ended (or, never ended, saw their last request: long timed out) before $1
_PURGEABLE: Final = "coalesce(ended_at, last_seen_at) < $1"
PURGE: Final = f"DELETE FROM staff_sessions WHERE {_PURGEABLE}"
COUNT_PURGEABLE: Final = f"SELECT count(*) FROM staff_sessions WHERE {_PURGEABLE}"
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


async def check(
    conn: Executor, session_id: str, now: datetime, timeouts: Timeouts
) -> tuple[SessionRow, SessionKey] | None:
    """The session and its key (from `api_keys`, not a process's cache), touched when live."""
    found = await conn.fetchrow(
        CHECK, session_hash(session_id), now, timeouts.idle, timeouts.absolute
    )
    if found is None:
        return None
    key = SessionKey(found["key_name"], frozenset(found["scopes"]), found["revoked_at"])
    return _row(found), key


async def purge(conn: Executor, before: datetime) -> int:
    """Delete the sessions ended (or idle) before `before`: their rows name a key and an
    address, kept only LEDGER_STAFF_SESSION_RETENTION_DAYS."""
    done = await conn.execute(PURGE, before)
    return int(done.split()[-1])


async def count_purgeable(conn: Executor, before: datetime) -> int:
    counted: int = await conn.fetchval(COUNT_PURGEABLE, before)
    return counted


async def end(conn: Executor, session_id: str, now: datetime, reason: str) -> None:
    """End a live session for `reason` (an ended one keeps its first end)."""
    await conn.execute(END, session_hash(session_id), now, reason)
