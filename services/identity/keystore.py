"""Per-subject data keys in PostgreSQL, wrapped (AES-GCM) by the current master key.

Only this table can decrypt a subject's identifiers; erasing the subject destroys its key
(crypto-shredding): the row stays as a tombstone without a key, so no key is ever made for
that subject again (projections/erasure.py). The master key never touches the database;
`rewrap` moves every data key to the current master key so an old master key can be retired
(`consent-ledger rewrap-keys` also moves the webhook secrets and erasure captures the master
key seals: services/cli/main.py `run_rewrap`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import asyncpg
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from projections import erasure
from services.identity.secrets import KEY_BYTES, KeyRing, SecretsError

_NONCE_BYTES = 12

GET_OR_CREATE = """
WITH ins AS (
    INSERT INTO subject_keys (subject_id, master_key_id, wrapped_key)
    SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[])
    ON CONFLICT (subject_id) DO NOTHING
    RETURNING subject_id, master_key_id, wrapped_key
)
SELECT subject_id, master_key_id, wrapped_key FROM ins
UNION ALL
SELECT subject_id, master_key_id, wrapped_key FROM subject_keys
WHERE subject_id = ANY($1::text[]) AND subject_id NOT IN (SELECT subject_id FROM ins)
"""


def _aad(subject_id: str) -> bytes:
    return f"ledger-data-key|{subject_id}".encode()


def wrap(master: KeyRing, subject_id: str, data_key: bytes) -> tuple[str, bytes]:
    nonce = os.urandom(_NONCE_BYTES)
    sealed = AESGCM(master.current).encrypt(nonce, data_key, _aad(subject_id))
    return master.current_id, nonce + sealed


def unwrap(master: KeyRing, subject_id: str, key_id: str, wrapped: bytes) -> bytes:
    key = master.keys.get(key_id)
    if key is None:
        raise SecretsError(
            f"a data key is wrapped by master key {key_id!r}, which LEDGER_MASTER_KEYS lacks"
        )
    try:
        return AESGCM(key).decrypt(wrapped[:_NONCE_BYTES], wrapped[_NONCE_BYTES:], _aad(subject_id))
    except InvalidTag:
        raise SecretsError(f"master key {key_id!r} does not open a stored data key") from None


class KeyShredded(Exception):
    """The subject was erased: its data key is destroyed and no new one is made."""


class DataKeys:
    """Get-or-create data keys for subjects, many per round trip."""

    def __init__(self, pool: asyncpg.Pool | asyncpg.Connection, master: KeyRing) -> None:
        self.pool = pool
        self.master = master

    async def for_subjects(self, subject_ids: Iterable[str]) -> dict[str, bytes]:
        """The keys, created where missing; erased subjects (shredded keys) are left out."""
        ids = list(dict.fromkeys(subject_ids))
        if not ids:
            return {}
        fresh = [wrap(self.master, s, os.urandom(KEY_BYTES)) for s in ids]
        rows = await self.pool.fetch(
            GET_OR_CREATE, ids, [k for k, _ in fresh], [w for _, w in fresh]
        )
        return {
            r["subject_id"]: unwrap(
                self.master, r["subject_id"], r["master_key_id"], r["wrapped_key"]
            )
            for r in rows
            if r["wrapped_key"] is not None
        }

    async def for_subject(self, subject_id: str) -> bytes:
        found = await self.for_subjects([subject_id])
        if subject_id not in found:
            raise KeyShredded(subject_id)
        return found[subject_id]

    async def existing(self, subject_id: str) -> bytes | None:
        """The subject's key if it has one; never creates (reading must not mint keys)."""
        row = await self.pool.fetchrow(
            "SELECT master_key_id, wrapped_key FROM subject_keys WHERE subject_id = $1", subject_id
        )
        if row is None or row["wrapped_key"] is None:
            return None
        return unwrap(self.master, subject_id, row["master_key_id"], row["wrapped_key"])

    async def shred(self, subject_id: str) -> None:
        """Destroy the subject's key for good; idempotent."""
        await erasure.shred(self.pool, subject_id)


async def rewrap(conn: asyncpg.Connection, master: KeyRing, batch: int = 1000) -> int:
    """Re-wrap every data key not under the current master key; returns how many moved."""
    moved = 0
    while True:
        rows = await conn.fetch(
            "SELECT subject_id, master_key_id, wrapped_key FROM subject_keys"
            " WHERE master_key_id <> $1 LIMIT $2",
            master.current_id,
            batch,
        )
        if not rows:
            return moved
        updates = []
        for r in rows:
            key = unwrap(master, r["subject_id"], r["master_key_id"], r["wrapped_key"])
            kid, wrapped = wrap(master, r["subject_id"], key)
            updates.append((r["subject_id"], r["master_key_id"], kid, wrapped))
        await conn.executemany(
            "UPDATE subject_keys SET master_key_id = $3, wrapped_key = $4"
            " WHERE subject_id = $1 AND master_key_id = $2",
            updates,
        )
        moved += len(updates)
