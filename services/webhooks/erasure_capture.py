"""The identifiers an erased subject held, captured and sealed BEFORE SubjectErased is appended
and the data key destroyed, for the erasure's webhooks (Art. 19 GDPR); the dispatcher opens
them per delivery and forgets them when done. The SQL: projections/webhook_erasures.py.

Design: docs/developers/design/webhooks.md
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from typing import Final, TypedDict
from uuid import UUID

import asyncpg
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from projections import identifiers, webhook_erasures
from schemas.events import IDENTIFIER_TYPES
from services.identity.identities import IdentifierError, decrypt_identifier
from services.identity.keystore import DataKeys
from services.identity.secrets import KEY_BYTES, KeyRing, SecretsError

_NONCE_BYTES: Final = 12
#: how old a capture no delivery will open must be before forget_orphans deletes it: longer
#: than an append can take (the produce timeout) and the clocks of API processes can differ
ORPHAN_GRACE: Final = timedelta(hours=1)


class Identifier(TypedDict):
    """One entry of a delivery's `data.identifiers`."""

    type: str
    value: str


def _key_aad(event_id: UUID) -> bytes:
    return f"ledger-webhook-erasure-key|{event_id}".encode()


def _aad(event_id: UUID, subject_id: str) -> bytes:
    return f"ledger-webhook-erasure|{event_id}|{subject_id}".encode()


def _wrap_key(master: KeyRing, event_id: UUID, key: bytes) -> tuple[str, bytes]:
    nonce = os.urandom(_NONCE_BYTES)
    return master.current_id, nonce + AESGCM(master.current).encrypt(nonce, key, _key_aad(event_id))


def _unwrap_key(master: KeyRing, event_id: UUID, key_id: str, wrapped: bytes) -> bytes:
    ring_key = master.keys.get(key_id)
    if ring_key is None:
        raise SecretsError(
            f"an erasure's identifiers are sealed by master key {key_id!r}, which"
            " LEDGER_MASTER_KEYS lacks"
        )
    try:
        nonce, sealed = wrapped[:_NONCE_BYTES], wrapped[_NONCE_BYTES:]
        return AESGCM(ring_key).decrypt(nonce, sealed, _key_aad(event_id))
    except InvalidTag:
        raise SecretsError("a captured erasure's identifiers do not open") from None


def seal(
    master: KeyRing, event_id: UUID, subject_id: str, found: list[Identifier]
) -> tuple[str, bytes, bytes]:
    """(master key id, wrapped key, sealed identifiers) under a key of this capture's own."""
    key, nonce = os.urandom(KEY_BYTES), os.urandom(_NONCE_BYTES)
    key_id, wrapped = _wrap_key(master, event_id, key)
    plain = json.dumps(found, separators=(",", ":")).encode()
    return key_id, wrapped, nonce + AESGCM(key).encrypt(nonce, plain, _aad(event_id, subject_id))


def unseal(master: KeyRing, row: webhook_erasures.CapturedRow) -> list[Identifier]:
    key = _unwrap_key(master, row.event_id, row.master_key_id, row.wrapped_key)
    s = row.sealed
    try:
        plain = AESGCM(key).decrypt(
            s[:_NONCE_BYTES], s[_NONCE_BYTES:], _aad(row.event_id, row.subject_id)
        )
    except InvalidTag:
        raise SecretsError("a captured erasure's identifiers do not open") from None
    found: list[Identifier] = json.loads(plain)
    return found


async def rewrap(conn: asyncpg.Connection, master: KeyRing, batch: int = 1000) -> int:
    """Wrap every capture's key not under the current master key anew under it (`consent-ledger
    rewrap-keys`, so an old master key can be dropped); returns how many moved."""
    moved = 0
    while rows := await webhook_erasures.wrapped_not_under(conn, master.current_id, batch):
        updates = [
            (
                event_id,
                key_id,
                *_wrap_key(master, event_id, _unwrap_key(master, event_id, key_id, w)),
            )
            for event_id, key_id, w in rows
        ]
        await webhook_erasures.rewrap(conn, updates)
        moved += len(updates)
    return moved


async def linked_identifiers(
    conn: asyncpg.Connection | asyncpg.Pool, data_keys: DataKeys, subject_id: str
) -> list[Identifier] | None:
    """The subject's linked e-mail addresses and phone numbers, decrypted; None when its data
    key is gone (erased before: nothing can be decrypted any more). A ciphertext that does not
    open with the key (an altered record) is left out."""
    key = await data_keys.existing(subject_id)
    if key is None:
        return None
    found: list[Identifier] = []
    for r in await identifiers.linked_to(conn, subject_id):
        kind = r["identifier_type"]
        if kind not in IDENTIFIER_TYPES or r["ciphertext"] is None:
            continue
        try:
            value = decrypt_identifier(key, subject_id, kind, bytes(r["ciphertext"]))
        except IdentifierError:
            continue
        found.append({"type": kind, "value": value})
    return found


async def capture(
    conn: asyncpg.Connection | asyncpg.Pool,
    data_keys: DataKeys,
    master: KeyRing,
    event_id: UUID,
    subject_id: str,
) -> bool:
    """Seal the subject's identifiers for the SubjectErased `event_id`; False when there was
    nothing to capture (the data key is already gone). Idempotent per event id."""
    found = await linked_identifiers(conn, data_keys, subject_id)
    if found is None:
        return False
    key_id, wrapped, sealed = seal(master, event_id, subject_id, found)
    await webhook_erasures.insert(conn, event_id, subject_id, key_id, wrapped, sealed)
    return True


async def open_capture(
    conn: asyncpg.Connection | asyncpg.Pool, master: KeyRing, event_id: UUID
) -> list[Identifier] | None:
    """The identifiers captured for the SubjectErased `event_id`, as `data.identifiers` takes
    them; None when nothing was captured (or it was forgotten)."""
    row = await webhook_erasures.get(conn, event_id)
    return None if row is None else unseal(master, row)


async def forget(conn: asyncpg.Connection | asyncpg.Pool, event_id: UUID) -> bool:
    """Delete a capture for good (every delivery of it is done, or its event never landed)."""
    return await webhook_erasures.delete(conn, event_id)


async def forget_orphans(
    conn: asyncpg.Connection | asyncpg.Pool,
    retry_window: timedelta,
    older_than: timedelta = ORPHAN_GRACE,
) -> list[UUID]:
    """Housekeeping (the dispatcher's, needing no traffic): delete the captures older than
    `older_than` that no delivery will open, because their SubjectErased never reached the log
    (a refused or lost append whose client gave up) or reached it without a delivery left to
    make; the event ids forgotten. A capture with a pending delivery to a subscription with
    include_identifiers stays for `forget`, but no longer than `retry_window` (and the grace):
    what is delivered after that says `identifiers_withheld`."""
    return await webhook_erasures.delete_orphans(conn, older_than, retry_window)
