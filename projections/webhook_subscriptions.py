"""The webhook_subscriptions and webhook_secrets tables (projections/migrations/0020_webhooks.sql):
the receivers an administrator subscribed to events of the log, and their sealed signing
secrets. An operator's configuration, not a fold of the log. The admin routes are
services/api/webhooks.py; sealing is services/identity/webhook_secrets.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from uuid import UUID

import asyncpg

from schemas.events import rfc3339

_COLUMNS: Final = (
    "s.id, s.url, s.event_types, s.description, s.include_identifiers, s.enabled, s.created_at,"
    " s.created_by, s.updated_at, s.failing_since, s.last_success_at"
)
#: the current secret's age and the latest moment a previous one still signs
_SECRET_STATE: Final = """
    (SELECT max(created_at) FROM webhook_secrets w
     WHERE w.subscription_id = s.id AND w.retires_at IS NULL) AS secret_created_at,
    (SELECT max(retires_at) FROM webhook_secrets w
     WHERE w.subscription_id = s.id AND w.retires_at > now()) AS previous_secret_retires_at
"""
SELECT: Final = f"SELECT {_COLUMNS}, {_SECRET_STATE} FROM webhook_subscriptions s"
INSERT: Final = """
INSERT INTO webhook_subscriptions (id, url, event_types, description, include_identifiers,
                                   created_by)
VALUES ($1, $2, $3, $4, $5, $6)
"""
#: PATCH: each column only where its flag says it was given
UPDATE: Final = """
UPDATE webhook_subscriptions SET
    url = CASE WHEN $2 THEN $3 ELSE url END,
    event_types = CASE WHEN $4 THEN $5::text[] ELSE event_types END,
    description = CASE WHEN $6 THEN $7 ELSE description END,
    enabled = CASE WHEN $8 THEN $9 ELSE enabled END,
    updated_at = now()
WHERE id = $1
"""
INSERT_SECRET: Final = """
INSERT INTO webhook_secrets (subscription_id, created_at, master_key_id, sealed_secret)
VALUES ($1, clock_timestamp(), $2, $3)
"""
#: a rotation: the current secret signs on until $2; those already retired are dropped
RETIRE_CURRENT: Final = """
WITH dropped AS (
    DELETE FROM webhook_secrets WHERE subscription_id = $1 AND retires_at <= now()
)
UPDATE webhook_secrets SET retires_at = $2 WHERE subscription_id = $1 AND retires_at IS NULL
"""
#: a leaked secret: every secret of the subscription stops signing at once
DROP_ALL_SECRETS: Final = "DELETE FROM webhook_secrets WHERE subscription_id = $1"
#: a rotation waits for another rotation or a deletion of the same subscription
LOCK_SUBSCRIPTION: Final = "SELECT 1 FROM webhook_subscriptions WHERE id = $1 FOR UPDATE"
#: the secrets that sign at $2, newest first; those retired by then are deleted on the way
SIGNING: Final = """
WITH dropped AS (
    DELETE FROM webhook_secrets WHERE subscription_id = $1 AND retires_at <= $2
)
SELECT created_at, master_key_id, sealed_secret, retires_at FROM webhook_secrets
WHERE subscription_id = $1 AND (retires_at IS NULL OR retires_at > $2)
ORDER BY created_at DESC
"""
DELETE_RETIRED: Final = "DELETE FROM webhook_secrets WHERE retires_at <= $1"
#: `rewrap-keys`: secrets sealed by another master key than the current one ($1)
NOT_UNDER: Final = """
SELECT subscription_id, created_at, master_key_id, sealed_secret FROM webhook_secrets
WHERE master_key_id <> $1 LIMIT $2
"""
RESEAL: Final = """
UPDATE webhook_secrets SET master_key_id = $4, sealed_secret = $5
WHERE subscription_id = $1 AND created_at = $2 AND master_key_id = $3
"""
WANTS_IDENTIFIERS: Final = """
SELECT EXISTS (
    SELECT 1 FROM webhook_subscriptions
    WHERE enabled AND include_identifiers AND $1 = ANY(event_types)
)
"""


@dataclass(frozen=True, slots=True)
class SubscriptionRow:
    """A subscription as the admin API shows it: never a secret, only its rotation state."""

    id: UUID
    url: str
    event_types: tuple[str, ...]
    description: str | None
    include_identifiers: bool
    enabled: bool
    created_at: datetime
    created_by: str | None
    updated_at: datetime
    failing_since: datetime | None
    last_success_at: datetime | None
    secret_created_at: datetime | None
    previous_secret_retires_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        def when(moment: datetime | None) -> str | None:
            return rfc3339(moment) if moment else None

        return {
            "id": str(self.id),
            "url": self.url,
            "events": list(self.event_types),
            "description": self.description,
            "include_identifiers": self.include_identifiers,
            "enabled": self.enabled,
            "created_at": rfc3339(self.created_at),
            "created_by": self.created_by,
            "updated_at": rfc3339(self.updated_at),
            "failing_since": when(self.failing_since),
            "last_success_at": when(self.last_success_at),
            "secret_created_at": when(self.secret_created_at),
            "previous_secret_retires_at": when(self.previous_secret_retires_at),
        }


@dataclass(frozen=True, slots=True)
class SealedSecret:
    created_at: datetime
    master_key_id: str
    sealed: bytes
    retires_at: datetime | None


def _row(r: asyncpg.Record) -> SubscriptionRow:
    return SubscriptionRow(
        r["id"],
        r["url"],
        tuple(r["event_types"]),
        r["description"],
        r["include_identifiers"],
        r["enabled"],
        r["created_at"],
        r["created_by"],
        r["updated_at"],
        r["failing_since"],
        r["last_success_at"],
        r["secret_created_at"],
        r["previous_secret_retires_at"],
    )


Conn = asyncpg.Connection | asyncpg.Pool


async def insert_subscription(
    conn: asyncpg.Connection,
    subscription_id: UUID,
    url: str,
    event_types: Sequence[str],
    description: str | None,
    include_identifiers: bool,
    created_by: str | None,
) -> None:
    await conn.execute(
        INSERT,
        subscription_id,
        url,
        list(event_types),
        description,
        include_identifiers,
        created_by,
    )


async def insert_secret(
    conn: asyncpg.Connection, subscription_id: UUID, master_key_id: str, sealed: bytes
) -> None:
    await conn.execute(INSERT_SECRET, subscription_id, master_key_id, sealed)


async def retire_current_secret(
    conn: asyncpg.Connection, subscription_id: UUID, retires_at: datetime
) -> None:
    await conn.execute(RETIRE_CURRENT, subscription_id, retires_at)


async def lock_subscription(conn: asyncpg.Connection, subscription_id: UUID) -> bool:
    """Lock the subscription's row for this transaction; False when there is none."""
    return await conn.fetchval(LOCK_SUBSCRIPTION, subscription_id) is not None


async def drop_all_secrets(conn: asyncpg.Connection, subscription_id: UUID) -> None:
    await conn.execute(DROP_ALL_SECRETS, subscription_id)


async def delete_retired_secrets(conn: Conn, now: datetime) -> int:
    """Delete every secret retired by `now`; how many went."""
    status = await conn.execute(DELETE_RETIRED, now)
    return int(status.split()[-1])


async def signing_secrets(conn: Conn, subscription_id: UUID, now: datetime) -> list[SealedSecret]:
    """The sealed secrets that sign at `now`, newest first; the subscription's secrets retired
    by `now` are deleted."""
    rows = await conn.fetch(SIGNING, subscription_id, now)
    return [
        SealedSecret(
            r["created_at"], r["master_key_id"], bytes(r["sealed_secret"]), r["retires_at"]
        )
        for r in rows
    ]


async def get_subscription(conn: Conn, subscription_id: UUID) -> SubscriptionRow | None:
    found = await conn.fetchrow(f"{SELECT} WHERE s.id = $1", subscription_id)
    return _row(found) if found else None


async def list_subscriptions(conn: Conn) -> list[SubscriptionRow]:
    return [_row(r) for r in await conn.fetch(f"{SELECT} ORDER BY s.created_at, s.id")]


async def update_subscription(
    conn: Conn, subscription_id: UUID, changes: dict[str, Any]
) -> SubscriptionRow | None:
    """Set the given columns (url, event_types, description, enabled); None for an unknown
    id."""
    status = await conn.execute(
        UPDATE,
        subscription_id,
        "url" in changes,
        changes.get("url"),
        "event_types" in changes,
        list(changes.get("event_types") or ()),
        "description" in changes,
        changes.get("description"),
        "enabled" in changes,
        bool(changes.get("enabled")),
    )
    if status == "UPDATE 0":
        return None
    return await get_subscription(conn, subscription_id)


async def delete_subscription(conn: Conn, subscription_id: UUID) -> bool:
    """Delete a subscription; its secrets, deliveries and their attempts go with it (the
    foreign keys cascade)."""
    status = await conn.execute("DELETE FROM webhook_subscriptions WHERE id = $1", subscription_id)
    return bool(status != "DELETE 0")


async def identifiers_wanted(conn: Conn, event_type: str) -> bool:
    """Whether an enabled subscription with include_identifiers receives `event_type`."""
    return bool(await conn.fetchval(WANTS_IDENTIFIERS, event_type))


async def sealed_not_under(
    conn: asyncpg.Connection, master_key_id: str, limit: int
) -> list[tuple[UUID, datetime, str, bytes]]:
    """Up to `limit` secrets sealed by another master key than `master_key_id`: (subscription
    id, created_at, master key id, sealed)."""
    rows = await conn.fetch(NOT_UNDER, master_key_id, limit)
    return [
        (r["subscription_id"], r["created_at"], r["master_key_id"], bytes(r["sealed_secret"]))
        for r in rows
    ]


async def reseal(
    conn: asyncpg.Connection, updates: Sequence[tuple[UUID, datetime, str, str, bytes]]
) -> None:
    """(subscription id, created_at, old master key id, new master key id, sealed) each."""
    await conn.executemany(RESEAL, updates)
