"""`append` (services/api/write.py) for many idempotency keys at once.

The same idempotency store and the same rules: the first claim of a key stores the exact
records it is about to send; a later claim re-sends those stored bytes unless the broker
acknowledged them or the projection already holds them. What differs is the cost: one
transaction for all the claims of a batch, one publish for all its records (acks awaited), one
transaction for all the acks, instead of two commits and a send per key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import asyncpg

from schemas.events import Event
from services.bootstrap import Ledger
from services.ledger import idempotency


@dataclass(frozen=True, slots=True)
class Appendable:
    """The events of one idempotency key, all of one subject, in the order they must land."""

    key: str
    digest: bytes
    subject_id: str
    events: list[Event]


async def append_many(ledger: Ledger, items: Sequence[Appendable]) -> list[bool]:
    """Put each item's events in the log once per key; returns, per item, whether an earlier
    claim of its key existed (a replay). Raises BrokerUnavailable when acks do not come;
    then a later call with the same keys completes the job."""
    values = [[ledger.codec.encode(e) for e in item.events] for item in items]
    # the key is stored only as its keyed hash, as the API stores it
    hashes = [idempotency.key_hash(ledger.secrets.blind_index_key, item.key) for item in items]
    async with ledger.pool.acquire() as conn, conn.transaction():
        # one commit for the batch; `claim` only calls fetchrow, which a connection has too
        store = cast(asyncpg.Pool, conn)
        claims = [
            await idempotency.claim(
                store, hashed, item.digest, item.subject_id, [e.event_id for e in item.events], v
            )
            for item, hashed, v in zip(items, hashes, values, strict=True)
        ]
    unacked = [i for c in claims if not c.first and c.acked is None for i in c.event_ids]
    projected = await idempotency.projected_positions(ledger.pool, unacked) if unacked else {}
    sends: list[tuple[int, list[tuple[Event, bytes]]]] = []
    for n, (item, claim, mine) in enumerate(zip(items, claims, values, strict=True)):
        if claim.first:
            sends.append((n, list(zip(item.events, mine, strict=True))))
        elif claim.acked is None and not all(i in projected for i in claim.event_ids):
            stored = [(ledger.codec.decode(v), v) for v in claim.record_values]
            sends.append((n, stored))
    records = [record for _, batch in sends for record in batch]
    positions = await ledger.publisher.publish(records) if records else []
    acks, at = [], 0
    for n, batch in sends:
        taken, at = positions[at : at + len(batch)], at + len(batch)
        acks.append((hashes[n], [p for p, _ in taken], [o for _, o in taken]))
    if acks:
        async with ledger.pool.acquire() as conn, conn.transaction():
            await conn.executemany(idempotency.RECORD_ACK, acks)
    return [not claim.first for claim in claims]
