"""API keys in PostgreSQL (the `api_keys` table of projections/migrations/0011_access.sql) and
the API's in-memory copy of them.

A request's key check must not cost a database round trip, so each API process keeps every
key row in memory (`KeyCache`). It reloads them when `keys create` or `keys revoke` NOTIFYs,
and every LEDGER_API_KEY_REFRESH_S / 2 seconds in case a notification is lost. A copy older
than LEDGER_API_KEY_REFRESH_S is not trusted (503), so a revoked key never works longer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any, Final

import asyncpg

from services.api_keys import (
    ADMIN,
    Caller,
    KeyRow,
    authenticate,
    key_hash,
    key_id,
    new_key,
    ordered,
)

log = logging.getLogger(__name__)

NOTIFY_CHANNEL: Final = "consent_ledger_api_keys"
#: the name of the key registered from LEDGER_ADMIN_KEY
ADMIN_KEY_NAME: Final = "LEDGER_ADMIN_KEY"

_COLUMNS: Final = "key_id, name, scopes, key_hash, created_at, revoked_at"
SELECT_ALL: Final = f"SELECT {_COLUMNS} FROM api_keys ORDER BY created_at, key_id"
INSERT: Final = f"""
INSERT INTO api_keys (key_id, name, scopes, key_hash) VALUES ($1, $2, $3, $4)
ON CONFLICT (key_id) DO NOTHING
RETURNING {_COLUMNS}
"""
REVOKE: Final = f"""
UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE key_id = $1
RETURNING {_COLUMNS}
"""


class KeyConflict(Exception):
    """A key id is already stored with another key (a key id names one key, for good)."""


class KeysUnavailable(Exception):
    """The API's copy of the keys is too old to trust: the database could not be read."""


def row_of(record: asyncpg.Record) -> KeyRow:
    return KeyRow(
        record["key_id"],
        record["name"],
        frozenset(record["scopes"]),
        bytes(record["key_hash"]),
        record["created_at"],
        record["revoked_at"],
    )


async def _notify(conn: asyncpg.Connection, kid: str) -> None:
    await conn.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, kid)


async def create_key(
    conn: asyncpg.Connection, name: str, scopes: frozenset[str]
) -> tuple[str, KeyRow]:
    """A new key and its row; the key itself is stored nowhere, only its hash."""
    while True:
        kid, key = new_key()
        async with conn.transaction():
            found = await conn.fetchrow(INSERT, kid, name, ordered(scopes), key_hash(key))
            if found is not None:
                await _notify(conn, kid)
                return key, row_of(found)


async def revoke_key(conn: asyncpg.Connection, kid: str) -> KeyRow | None:
    """Revoke a key for good (revoking twice keeps the first time); None for an unknown id."""
    async with conn.transaction():
        found = await conn.fetchrow(REVOKE, kid)
        if found is not None:
            await _notify(conn, kid)
    return row_of(found) if found is not None else None


async def list_keys(conn: asyncpg.Connection | asyncpg.Pool) -> list[KeyRow]:
    return [row_of(r) for r in await conn.fetch(SELECT_ALL)]


@dataclass(frozen=True, slots=True)
class Registered:
    row: KeyRow
    created: bool


async def register_admin_key(
    conn: asyncpg.Connection | asyncpg.Pool, key: str, name: str = ADMIN_KEY_NAME
) -> Registered:
    """Store `key` as an admin key unless it is stored already (idempotent). A revoked key
    stays revoked: revocation is final, a new LEDGER_ADMIN_KEY replaces it. KeyConflict when
    its id is stored with another key."""
    kid = key_id(key)
    digest = key_hash(key)
    found = await conn.fetchrow(INSERT, kid, name, [ADMIN], digest)
    if found is not None:
        await conn.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, kid)
        return Registered(row_of(found), True)
    stored = await conn.fetchrow(f"SELECT {_COLUMNS} FROM api_keys WHERE key_id = $1", kid)
    assert stored is not None
    row = row_of(stored)
    if row.key_hash != digest:
        raise KeyConflict(f"key id {kid} is already stored with another key; choose another id")
    return Registered(row, False)


class KeyCache:
    """Every key row, in memory, reloaded on NOTIFY and on an interval."""

    def __init__(self, pool: asyncpg.Pool, max_age_s: float) -> None:
        self.pool = pool
        self.max_age_s = max_age_s
        self.rows: dict[str, KeyRow] = {}
        self.loaded_at = float("-inf")
        self._listener: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._reloads: set[asyncio.Task[None]] = set()

    async def start(self, database_url: str) -> None:
        await self.reload()
        with contextlib.suppress(OSError, asyncpg.PostgresError):
            self._listener = await asyncpg.connect(database_url)
            await self._listener.add_listener(NOTIFY_CHANNEL, self._notified)
        self._task = asyncio.create_task(self._refresh_loop())

    async def close(self) -> None:
        for task in (self._task, *self._reloads):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self._listener is not None:
            with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                await self._listener.close(timeout=2)

    async def reload(self) -> None:
        """Read every row; a read that began before the copy in hand is dropped, so a slow
        periodic reload never brings back a key that a NOTIFY's reload saw revoked."""
        started = time.monotonic()  # the rows read are at least this fresh
        rows = await list_keys(self.pool)
        if started < self.loaded_at:
            return
        self.rows = {row.key_id: row for row in rows}
        self.loaded_at = started

    def _notified(self, *_: Any) -> None:
        task = asyncio.create_task(self._reload_quietly())
        self._reloads.add(task)
        task.add_done_callback(self._reloads.discard)

    async def _reload_quietly(self) -> None:
        try:
            await self.reload()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            log.warning("could not reload the API keys: %s", type(exc).__name__)

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self.max_age_s / 2)
            await self._reload_quietly()

    def authenticate(self, header: str | None) -> Caller:
        """KeyRefused for a bad key; KeysUnavailable when the copy is too old to trust."""
        if time.monotonic() - self.loaded_at > self.max_age_s:
            raise KeysUnavailable("the API keys could not be reloaded from the database")
        return authenticate(header, self.rows)
