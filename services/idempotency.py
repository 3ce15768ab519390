"""Idempotency keys: the same key and body give the same events, never a second one.

The first request stores the exact records it is about to send; a retry re-sends those bytes
(same event ids, which the projector deduplicates) or, when they are already projected, just
answers from the journal. The same key with another body is refused.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg


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
    INSERT INTO idempotency_keys (idempotency_key, request_digest, event_ids, record_values,
                                  subject_id)
    VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING request_digest, event_ids, record_values, ack_partitions, ack_offsets, true AS first
)
SELECT * FROM ins
UNION ALL
SELECT request_digest, event_ids, record_values, ack_partitions, ack_offsets, false
FROM idempotency_keys
WHERE idempotency_key = $1 AND NOT EXISTS (SELECT 1 FROM ins)
"""


async def claim(
    pool: asyncpg.Pool,
    key: str,
    digest: bytes,
    subject_id: str,
    event_ids: Sequence[UUID],
    values: Sequence[bytes],
) -> Claim:
    """Store this request under `key`, or return what an earlier request stored."""
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


async def record_ack(pool: asyncpg.Pool, key: str, positions: Sequence[tuple[int, int]]) -> None:
    """Remember where the broker put the records, so a retry answers without re-sending."""
    await pool.execute(
        "UPDATE idempotency_keys SET ack_partitions = $2, ack_offsets = $3"
        " WHERE idempotency_key = $1",
        key,
        [p for p, _ in positions],
        [o for _, o in positions],
    )


async def projected_positions(
    pool: asyncpg.Pool, event_ids: Sequence[UUID]
) -> dict[UUID, tuple[int, int]]:
    rows = await pool.fetch(
        "SELECT event_id, log_partition, log_offset FROM journal WHERE event_id = ANY($1::uuid[])",
        list(event_ids),
    )
    return {r["event_id"]: (r["log_partition"], r["log_offset"]) for r in rows}


async def logged_position(pool: asyncpg.Pool, key: str) -> tuple[int, int] | None:
    """Where the last record claimed under `key` landed; None if unclaimed or not known yet."""
    row = await pool.fetchrow(
        "SELECT event_ids, ack_partitions, ack_offsets FROM idempotency_keys"
        " WHERE idempotency_key = $1",
        key,
    )
    if row is None:
        return None
    if row["ack_offsets"] is not None:
        return max(zip(row["ack_partitions"], row["ack_offsets"], strict=True))
    known = await projected_positions(pool, row["event_ids"])
    return max(known.values()) if len(known) == len(row["event_ids"]) else None


async def is_claimed(pool: asyncpg.Pool, key: str) -> bool:
    """Whether a request already stored records under `key` (a retry must replay them)."""
    return bool(
        await pool.fetchval(
            "SELECT EXISTS (SELECT 1 FROM idempotency_keys WHERE idempotency_key = $1)", key
        )
    )
