"""Idempotency keys: the same key and body give the same events, never a second one; the key
itself is stored only as a keyed hash.

Design: docs/developers/design/idempotency.md
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, cast
from uuid import UUID

import asyncpg

from projections import journal

log = logging.getLogger(__name__)

#: what the hashing key is derived with from the blind-index key: no other use of that key
#: (a blind index is `type:value`, a derived subject id has its own label) has this input
HASH_KEY_LABEL: Final = b"consent-ledger idempotency-key hash v1"
#: legacy rows hashed per transaction
LEGACY_BATCH: Final = 5000
_LEGACY_LOCK: Final = 0x1ED6E6  # any constant shared by every ledger process


def key_hash(blind_index_key: bytes, key: str) -> bytes:
    """What the table stores for an idempotency key: HMAC-SHA-256 of the key under
    HMAC-SHA-256(blind-index key, HASH_KEY_LABEL). The blind-index key never rotates, so a
    retry years later still finds its row."""
    hashing_key = hmac.new(blind_index_key, HASH_KEY_LABEL, hashlib.sha256).digest()
    return hmac.new(hashing_key, key.encode("utf-8"), hashlib.sha256).digest()


def request_digest(route: str, subject_id: str, body: dict[str, Any]) -> bytes:
    canonical = json.dumps([route, subject_id, body], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).digest()


@dataclass(frozen=True, slots=True)
class Claim:
    event_ids: list[UUID]
    record_values: list[bytes]
    first: bool
    digest_matches: bool
    acked: list[tuple[int, int]] | None


CLAIM = """
WITH ins AS (
    INSERT INTO idempotency_keys (key_hash, request_digest, event_ids, record_values, subject_id)
    VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT (key_hash) DO NOTHING
    RETURNING request_digest, event_ids, record_values, ack_partitions, ack_offsets, true AS first
)
SELECT * FROM ins
UNION ALL
SELECT request_digest, event_ids, record_values, ack_partitions, ack_offsets, false
FROM idempotency_keys
WHERE key_hash = $1 AND NOT EXISTS (SELECT 1 FROM ins)
"""


async def claim(
    pool: asyncpg.Connection | asyncpg.Pool,
    key: bytes,
    digest: bytes,
    subject_id: str,
    event_ids: Sequence[UUID],
    values: Sequence[bytes],
) -> Claim:
    """Store this request under `key` (a key_hash), or return what an earlier request stored."""
    row = await pool.fetchrow(CLAIM, key, digest, list(event_ids), list(values), subject_id)
    assert row is not None
    return Claim(
        event_ids=list(row["event_ids"]),
        record_values=list(row["record_values"]),
        first=row["first"],
        digest_matches=bytes(row["request_digest"]) == digest,
        acked=list(zip(row["ack_partitions"], row["ack_offsets"], strict=True))
        if row["ack_offsets"] is not None
        else None,
    )


@dataclass(frozen=True, slots=True)
class Claimant:
    """What one request stores under its key: `key` is its key_hash."""

    key: bytes
    digest: bytes
    subject_id: str
    event_ids: list[UUID]
    values: list[bytes]


async def claim_all(pool: asyncpg.Pool, claimants: Sequence[Claimant]) -> list[Claim]:
    """`claim` for each, in order: one statement for one, one transaction (one commit) for
    many."""
    if len(claimants) == 1:
        [one] = claimants
        return [await claim(pool, one.key, one.digest, one.subject_id, one.event_ids, one.values)]
    async with pool.acquire() as proxy, proxy.transaction():
        conn = cast(asyncpg.Connection, proxy)  # the pool's proxy is a connection to the stubs
        return [
            await claim(conn, c.key, c.digest, c.subject_id, c.event_ids, c.values)
            for c in claimants
        ]


RECORD_ACK: Final = (
    "UPDATE idempotency_keys SET ack_partitions = $2, ack_offsets = $3 WHERE key_hash = $1"
)


async def record_acks(
    pool: asyncpg.Pool, acks: Sequence[tuple[bytes, Sequence[tuple[int, int]]]]
) -> None:
    """Remember where the broker put each key's records (key_hash, positions), so a retry
    answers without re-sending: one statement for one key, one transaction for many."""
    rows = [(key, [p for p, _ in at], [o for _, o in at]) for key, at in acks]
    if len(rows) == 1:
        await pool.execute(RECORD_ACK, *rows[0])
        return
    async with pool.acquire() as conn, conn.transaction():
        await conn.executemany(RECORD_ACK, rows)


async def projected_positions(
    pool: asyncpg.Pool, event_ids: Sequence[UUID]
) -> dict[UUID, tuple[int, int]]:
    return await journal.positions_of(pool, event_ids)


async def logged_position(pool: asyncpg.Pool, key: bytes) -> tuple[int, int] | None:
    """Where the last record claimed under `key` landed; None if unclaimed or not known yet."""
    row = await pool.fetchrow(
        "SELECT event_ids, ack_partitions, ack_offsets FROM idempotency_keys WHERE key_hash = $1",
        key,
    )
    if row is None:
        return None
    if row["ack_offsets"] is not None:
        return max(zip(row["ack_partitions"], row["ack_offsets"], strict=True))
    known = await projected_positions(pool, row["event_ids"])
    return max(known.values()) if len(known) == len(row["event_ids"]) else None


async def is_claimed(pool: asyncpg.Pool, key: bytes) -> bool:
    """Whether a request already stored records under `key` (a retry must replay them)."""
    return bool(
        await pool.fetchval(
            "SELECT EXISTS (SELECT 1 FROM idempotency_keys WHERE key_hash = $1)", key
        )
    )


LEGACY_ROWS: Final = """
SELECT idempotency_key FROM idempotency_keys WHERE key_hash IS NULL
ORDER BY idempotency_key LIMIT $1
"""
#: a key claimed in clear (by a process of the earlier version) and hashed (by this one)
#: keeps its hashed claim, which later retries find
DROP_CLAIMED_TWICE: Final = """
DELETE FROM idempotency_keys k USING unnest($1::text[], $2::bytea[]) AS x(raw, hash)
WHERE k.idempotency_key = x.raw AND k.key_hash IS NULL
  AND EXISTS (SELECT 1 FROM idempotency_keys h WHERE h.key_hash = x.hash)
"""
HASH_LEGACY: Final = """
UPDATE idempotency_keys k SET key_hash = x.hash, idempotency_key = NULL
FROM unnest($1::text[], $2::bytea[]) AS x(raw, hash)
WHERE k.idempotency_key = x.raw AND k.key_hash IS NULL
"""


async def hash_legacy_keys(conn: asyncpg.Connection, blind_index_key: bytes) -> int:
    """Replace every key stored in clear (rows from before migration 0016) by its key_hash;
    returns how many. Processes that start together take turns on an advisory lock, and the
    later ones find nothing left to do; a process stopped half-way leaves whole batches done,
    and the next start goes on. Run it before serving: a retry of an old request must find
    its row by the hash."""
    if not await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM idempotency_keys WHERE key_hash IS NULL)"
    ):
        return 0
    hashed = 0
    async with conn.transaction():
        # the API pool's statement timeout must not cut the wait for another process that is
        # hashing a large table: LOCAL, so the connection keeps its timeout afterwards
        await conn.execute("SET LOCAL statement_timeout = 0")
        await conn.execute("SELECT pg_advisory_lock($1)", _LEGACY_LOCK)  # held past the commit
    try:
        while True:
            async with conn.transaction():
                raws = [r["idempotency_key"] for r in await conn.fetch(LEGACY_ROWS, LEGACY_BATCH)]
                if not raws:
                    break
                hashes = [key_hash(blind_index_key, raw) for raw in raws]
                dropped = await conn.execute(DROP_CLAIMED_TWICE, raws, hashes)
                if dropped != "DELETE 0":
                    log.warning(
                        "%s idempotency key(s) were claimed both in clear and hashed (a process"
                        " of the earlier version ran beside this one): kept the hashed claims",
                        dropped.split()[-1],
                    )
                await conn.execute(HASH_LEGACY, raws, hashes)
            hashed += len(raws)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LEGACY_LOCK)
    if hashed:
        log.info("replaced %d idempotency keys stored in clear by their keyed hash", hashed)
    return hashed


async def forget_subject(conn: asyncpg.Connection, subject_id: str) -> None:
    """Delete a subject's records when its proof is purged (services/proof/retention.py)."""
    await conn.execute("DELETE FROM idempotency_keys WHERE subject_id = $1", subject_id)


async def forget_acks(conn: asyncpg.Connection) -> None:
    """Forget where the broker acknowledged every key's records, after a restore of the log:
    a position may name a record the old log lost, so a retry asks the journal instead."""
    await conn.execute(
        "UPDATE idempotency_keys SET ack_partitions = NULL, ack_offsets = NULL"
        " WHERE ack_offsets IS NOT NULL"
    )
