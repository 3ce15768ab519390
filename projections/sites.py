"""The `sites` table (projections/migrations/0019_sites.sql): websites registered to record
their visitors' cookie choices, each with its publishable key's keyed hash. An operator's
configuration, not a fold of the log; every change NOTIFYs the API processes, which keep the
rows in memory with the API keys (services/identity/api_key_store.py `KeyCache`). The admin
routes are services/api/sites.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import asyncpg

from schemas.events import rfc3339

#: the channel the API keys' changes are announced on: a site's key is reloaded with them
NOTIFY_CHANNEL: Final = "consent_ledger_api_keys"

_COLUMNS: Final = "site_id, name, origins, purposes, key_hash, created_at, revoked_at"
SELECT_ALL: Final = f"SELECT {_COLUMNS} FROM sites ORDER BY created_at, site_id"
INSERT: Final = f"""
INSERT INTO sites (site_id, name, origins, purposes, key_hash) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (site_id) DO NOTHING
RETURNING {_COLUMNS}
"""
REVOKE: Final = f"""
UPDATE sites SET revoked_at = coalesce(revoked_at, now()) WHERE site_id = $1
RETURNING {_COLUMNS}
"""


@dataclass(frozen=True, slots=True)
class SiteRow:
    """A registered website: never its key, only the key's hash."""

    site_id: str
    name: str
    origins: tuple[str, ...]
    purposes: tuple[str, ...]
    key_hash: bytes
    created_at: datetime
    revoked_at: datetime | None

    def as_json(self) -> dict[str, object]:
        return {
            "site_id": self.site_id,
            "name": self.name,
            "origins": list(self.origins),
            "purposes": list(self.purposes),
            "created_at": rfc3339(self.created_at),
            "revoked_at": rfc3339(self.revoked_at) if self.revoked_at else None,
        }


def _row(record: asyncpg.Record) -> SiteRow:
    return SiteRow(
        record["site_id"],
        record["name"],
        tuple(record["origins"]),
        tuple(record["purposes"]),
        bytes(record["key_hash"]),
        record["created_at"],
        record["revoked_at"],
    )


async def insert_site(
    conn: asyncpg.Connection | asyncpg.Pool,
    site_id: str,
    name: str,
    origins: Sequence[str],
    purposes: Sequence[str],
    key_hash: bytes,
) -> SiteRow | None:
    """Store a new site and announce it; None when `site_id` is taken (draw another)."""
    found = await conn.fetchrow(INSERT, site_id, name, list(origins), list(purposes), key_hash)
    if found is None:
        return None
    await conn.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, site_id)
    return _row(found)


async def revoke_site(conn: asyncpg.Connection | asyncpg.Pool, site_id: str) -> SiteRow | None:
    """Revoke a site's key for good (twice keeps the first time); None for an unknown id."""
    found = await conn.fetchrow(REVOKE, site_id)
    if found is None:
        return None
    await conn.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, site_id)
    return _row(found)


async def list_sites(conn: asyncpg.Connection | asyncpg.Pool) -> list[SiteRow]:
    return [_row(r) for r in await conn.fetch(SELECT_ALL)]
