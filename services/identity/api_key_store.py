"""API keys in PostgreSQL (the `api_keys` table of projections/migrations/0011_access.sql) and
the API's in-memory copy of them.

A request's key check must not cost a database round trip, so each API process keeps every
key row in memory (`KeyCache`). It reloads them when `keys create` or `keys revoke` NOTIFYs,
and every LEDGER_API_KEY_REFRESH_S / 2 seconds in case a notification is lost. A copy older
than LEDGER_API_KEY_REFRESH_S is not trusted (503), so a revoked key never works longer.

A row stored as plain SHA-256 (before the hash key existed, migration 0014) is rewritten to
the keyed hash on its key's next successful use: the key itself is needed to compute it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, Final

import asyncpg

from projections.sites import SiteRow, list_sites
from services.identity.api_keys import (
    ADMIN,
    FROM_ADMIN_VARIABLE,
    FROM_COMMAND,
    KEYED,
    LEGACY,
    Caller,
    KeyRow,
    bearer_key,
    forgotten_admin_keys,
    key_hash,
    key_id,
    new_key,
    ordered,
    stored_hash,
    verify_key,
)
from services.identity.session_store import END_KEY_SESSIONS
from services.identity.site_keys import verify_site_key

log = logging.getLogger(__name__)

NOTIFY_CHANNEL: Final = "consent_ledger_api_keys"
#: the name of the key registered from LEDGER_ADMIN_KEY
ADMIN_KEY_NAME: Final = "LEDGER_ADMIN_KEY"

_COLUMNS: Final = "key_id, name, scopes, key_hash, created_at, revoked_at, hash_kind, origin"
SELECT_ALL: Final = f"SELECT {_COLUMNS} FROM api_keys ORDER BY created_at, key_id"
INSERT: Final = f"""
INSERT INTO api_keys (key_id, name, scopes, key_hash, hash_kind, origin)
VALUES ($1, $2, $3, $4, '{KEYED}', $5)
ON CONFLICT (key_id) DO NOTHING
RETURNING {_COLUMNS}
"""
#: a legacy row to the keyed hash; only while it still holds the legacy hash of the same key
UPGRADE: Final = f"""
UPDATE api_keys SET key_hash = $2, hash_kind = '{KEYED}'
WHERE key_id = $1 AND hash_kind = '{LEGACY}' AND key_hash = $3
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
        record["hash_kind"],
        record["origin"],
    )


async def _notify(conn: asyncpg.Connection, kid: str) -> None:
    await conn.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, kid)


async def create_key(
    conn: asyncpg.Connection, name: str, scopes: frozenset[str], hash_key: bytes
) -> tuple[str, KeyRow]:
    """A new key and its row; the key itself is stored nowhere, only its keyed hash."""
    while True:
        kid, key = new_key()
        digest = key_hash(key, hash_key)
        async with conn.transaction():
            found = await conn.fetchrow(INSERT, kid, name, ordered(scopes), digest, FROM_COMMAND)
            if found is not None:
                await _notify(conn, kid)
                return key, row_of(found)


async def revoke_key(conn: asyncpg.Connection, kid: str) -> KeyRow | None:
    """Revoke a key for good (revoking twice keeps the first time) and end its staff sessions;
    None for an unknown id."""
    async with conn.transaction():
        found = await conn.fetchrow(REVOKE, kid)
        if found is not None:
            await conn.execute(END_KEY_SESSIONS, kid)
            await _notify(conn, kid)
    return row_of(found) if found is not None else None


async def list_keys(conn: asyncpg.Connection | asyncpg.Pool) -> list[KeyRow]:
    return [row_of(r) for r in await conn.fetch(SELECT_ALL)]


@dataclass(frozen=True, slots=True)
class Registered:
    row: KeyRow
    created: bool


async def upgrade_hash(
    conn: asyncpg.Connection | asyncpg.Pool, row: KeyRow, key: str, hash_key: bytes
) -> KeyRow | None:
    """Rewrite a legacy (SHA-256) row to the keyed hash of `key`, which must be its key; the
    row as stored now, or None when another process upgraded it first."""
    found = await conn.fetchrow(UPGRADE, row.key_id, key_hash(key, hash_key), row.key_hash)
    if found is None:
        return None
    await conn.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, row.key_id)
    return row_of(found)


async def register_admin_key(
    conn: asyncpg.Connection | asyncpg.Pool,
    key: str,
    hash_key: bytes,
    name: str = ADMIN_KEY_NAME,
    origin: str = FROM_ADMIN_VARIABLE,
) -> Registered:
    """Store `key` as an admin key unless it is stored already (idempotent; a legacy row of it
    gets the keyed hash). A revoked key stays revoked: revocation is final, a new
    LEDGER_ADMIN_KEY replaces it. KeyConflict when its id is stored with another key."""
    kid = key_id(key)
    found = await conn.fetchrow(INSERT, kid, name, [ADMIN], key_hash(key, hash_key), origin)
    if found is not None:
        await conn.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, kid)
        return Registered(row_of(found), True)
    stored = await conn.fetchrow(f"SELECT {_COLUMNS} FROM api_keys WHERE key_id = $1", kid)
    assert stored is not None
    row = row_of(stored)
    if row.key_hash != stored_hash(row, key, hash_key):
        raise KeyConflict(f"key id {kid} is already stored with another key; choose another id")
    if row.hash_kind == LEGACY:
        row = await upgrade_hash(conn, row, key, hash_key) or row
    return Registered(row, False)


def warn_forgotten_admin_keys(rows: Iterable[KeyRow], admin_key: str) -> list[str]:
    """Log a WARNING naming each valid key registered from an earlier LEDGER_ADMIN_KEY (not
    the current one, `admin_key`, empty when unset); returns their ids."""
    forgotten = forgotten_admin_keys(rows, key_id(admin_key) if admin_key else None)
    for kid in forgotten:
        log.warning(
            "API key %s was registered from an earlier LEDGER_ADMIN_KEY and still works:"
            " changing or unsetting the variable does not revoke it; revoke it with"
            " `consent-ledger keys revoke %s` once nothing uses it",
            kid,
            kid,
        )
    return forgotten


class KeyCache:
    """Every key row and every site (projections/sites.py: their publishable keys are
    refused within the same interval), in memory, reloaded on NOTIFY and on an interval."""

    def __init__(self, pool: asyncpg.Pool, max_age_s: float, hash_key: bytes) -> None:
        self.pool = pool
        self.max_age_s = max_age_s
        self.hash_key = hash_key
        self.rows: dict[str, KeyRow] = {}
        self.sites: dict[str, SiteRow] = {}
        self.loaded_at = float("-inf")
        self._listener: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._reloads: set[asyncio.Task[None]] = set()

    async def start(self, connect: Callable[[], Awaitable[asyncpg.Connection]]) -> None:
        """Load the keys, then listen for changes on a connection of its own (`connect`)."""
        await self.reload()
        with contextlib.suppress(OSError, asyncpg.PostgresError):
            self._listener = await connect()
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
        sites = await list_sites(self.pool)
        if started < self.loaded_at:
            return
        self.rows = {row.key_id: row for row in rows}
        self.sites = {site.site_id: site for site in sites}
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
        """KeyRefused for a bad key; KeysUnavailable when the copy is too old to trust. A
        legacy row that matched is upgraded beside the request (no round trip in it)."""
        if time.monotonic() - self.loaded_at > self.max_age_s:
            raise KeysUnavailable("the API keys could not be reloaded from the database")
        key = bearer_key(header)
        row = verify_key(key, self.rows, self.hash_key)
        if row.hash_kind == LEGACY:
            self._upgrade_soon(row, key)
        return Caller(row.key_id, row.name, row.scopes)

    def authenticate_site(self, header: str | None) -> SiteRow:
        """The site a publishable key belongs to: KeyRefused for a bad or revoked key,
        KeysUnavailable when the copy is too old to trust."""
        if time.monotonic() - self.loaded_at > self.max_age_s:
            raise KeysUnavailable("the site keys could not be reloaded from the database")
        return verify_site_key(bearer_key(header), self.sites, self.hash_key)

    def _upgrade_soon(self, row: KeyRow, key: str) -> None:
        """Keep the keyed hash in memory now (the next use does not upgrade again) and store
        it; a failed store is retried on a later use, once a reload brings the row back."""
        self.rows[row.key_id] = replace(row, key_hash=key_hash(key, self.hash_key), hash_kind=KEYED)
        task = asyncio.create_task(self._store_upgrade(row, key))
        self._reloads.add(task)
        task.add_done_callback(self._reloads.discard)

    async def _store_upgrade(self, row: KeyRow, key: str) -> None:
        try:
            if await upgrade_hash(self.pool, row, key, self.hash_key) is not None:
                log.info("API key %s: stored hash upgraded to HMAC-SHA-256", row.key_id)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            why = type(exc).__name__
            log.warning("could not upgrade the hash of API key %s: %s", row.key_id, why)
