"""Webhook signing secrets, sealed (AES-GCM) under the current master key, bound to their
subscription; a rotation lets the previous secret sign beside the new one for a day.

Design: docs/developers/design/webhooks.md
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from typing import Final
from uuid import UUID

import asyncpg
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from projections import webhook_subscriptions as subscriptions
from services.identity.secrets import KeyRing, SecretsError

ROTATION_OVERLAP: Final = timedelta(days=1)
_NONCE_BYTES: Final = 12


def _aad(subscription_id: UUID) -> bytes:
    return f"ledger-webhook-secret|{subscription_id}".encode()


def seal(master: KeyRing, subscription_id: UUID, secret: str) -> tuple[str, bytes]:
    nonce = os.urandom(_NONCE_BYTES)
    sealed = AESGCM(master.current).encrypt(nonce, secret.encode(), _aad(subscription_id))
    return master.current_id, nonce + sealed


def unseal(master: KeyRing, subscription_id: UUID, key_id: str, sealed: bytes) -> str:
    key = master.keys.get(key_id)
    if key is None:
        raise SecretsError(
            f"a webhook secret is sealed by master key {key_id!r}, which LEDGER_MASTER_KEYS lacks"
        )
    try:
        plain = AESGCM(key).decrypt(
            sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], _aad(subscription_id)
        )
    except InvalidTag:
        raise SecretsError(f"master key {key_id!r} does not open a stored webhook secret") from None
    return plain.decode()


async def issue(
    conn: asyncpg.Connection, master: KeyRing, subscription_id: UUID, secret: str
) -> None:
    """Store `secret` as the subscription's current one."""
    key_id, sealed = seal(master, subscription_id, secret)
    await subscriptions.insert_secret(conn, subscription_id, key_id, sealed)


class SubscriptionGone(LookupError):
    """The subscription to rotate does not exist (never did, or was deleted meanwhile)."""


async def rotate(
    conn: asyncpg.Connection,
    master: KeyRing,
    subscription_id: UUID,
    secret: str,
    now: datetime,
    *,
    retire_previous_now: bool = False,
) -> datetime:
    """Make `secret` the only current one; the previous keeps signing until the moment
    answered (`now` itself with `retire_previous_now`: a leaked secret is deleted at once).
    The subscription's row is locked first, so concurrent rotations leave one current secret
    and a deletion cannot slip in between; SubscriptionGone when there is no such row."""
    retires_at = now if retire_previous_now else now + ROTATION_OVERLAP
    async with conn.transaction():
        if not await subscriptions.lock_subscription(conn, subscription_id):
            raise SubscriptionGone(subscription_id)
        if retire_previous_now:
            await subscriptions.drop_all_secrets(conn, subscription_id)
        else:
            await subscriptions.retire_current_secret(conn, subscription_id, retires_at)
        await issue(conn, master, subscription_id, secret)
    return retires_at


async def signing_secrets(
    conn: asyncpg.Connection | asyncpg.Pool, master: KeyRing, subscription_id: UUID, now: datetime
) -> list[str]:
    """The secrets that sign a delivery made at `now`, newest first; the subscription's
    secrets retired by then are deleted on the way."""
    rows = await subscriptions.signing_secrets(conn, subscription_id, now)
    return [unseal(master, subscription_id, r.master_key_id, r.sealed) for r in rows]


async def delete_retired(conn: asyncpg.Connection | asyncpg.Pool, now: datetime) -> int:
    """Housekeeping (the dispatcher's): delete every secret retired by `now`, also of
    subscriptions nothing is delivered to; how many went."""
    return await subscriptions.delete_retired_secrets(conn, now)


async def rewrap(conn: asyncpg.Connection, master: KeyRing, batch: int = 1000) -> int:
    """Seal every secret not under the current master key anew under it (`consent-ledger
    rewrap-keys`, so an old master key can be dropped); returns how many moved."""
    moved = 0
    while rows := await subscriptions.sealed_not_under(conn, master.current_id, batch):
        updates = []
        for subscription_id, created_at, key_id, sealed in rows:
            secret = unseal(master, subscription_id, key_id, sealed)
            updates.append(
                (subscription_id, created_at, key_id, *seal(master, subscription_id, secret))
            )
        await subscriptions.reseal(conn, updates)
        moved += len(updates)
    return moved
