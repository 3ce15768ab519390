"""The webhook dispatcher's fan-out tables: its positions on the event topic
(webhook_dispatch_offsets) and the delivery rows it creates for each event, written in one
transaction so a crash anywhere neither loses an event nor creates a delivery twice.

Design: docs/developers/design/webhooks.md
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from projections import webhook_queue
from projections.journal import event_payload
from schemas.events import PERSONAL_CONTEXT_FIELDS, Event

#: the payload's own fields; the rest of event_payload is the event's `data`
ENVELOPE = ("type", "event_id", "subject_id", "occurred_at", "recorded_at")
#: an identifier event's fields no delivery carries: the blind index (which would let a
#: receiver match the suppression list's entries of erased subjects to addresses it holds) and
#: the address sealed under the subject's key (include_identifiers carries it decrypted)
WITHHELD = frozenset({"blind_index", "ciphertext"})


def delivery_payload(event: Event) -> dict[str, Any]:
    """`{type, event_id, subject_id, occurred_at, recorded_at, data}`: data holds the event's
    own fields as the API shows them, less the blind index and every sealed value (an
    identifier's ciphertext, the context's client address and user agent): a delivery row
    keeps nothing personal but the pseudonymous subject id."""
    fields = event_payload(event)
    data = {k: v for k, v in fields.items() if k not in ENVELOPE and k not in WITHHELD}
    context = data.get("context")
    if isinstance(context, dict):
        data["context"] = {k: v for k, v in context.items() if k not in PERSONAL_CONTEXT_FIELDS}
    return {**{name: fields[name] for name in ENVELOPE}, "data": data}


@dataclass(frozen=True, slots=True)
class NewDelivery:
    subscription_id: UUID
    event: Event
    partition: int
    offset: int


async def lock_offsets(conn: asyncpg.Connection, firsts: Mapping[int, int]) -> dict[int, int]:
    """Lock the partitions' positions for this transaction (two dispatchers never fan one
    partition out at once, as in a rebalance) and answer them; a partition without one starts
    at its first record here."""
    parts = sorted(firsts)
    await conn.execute(
        "INSERT INTO webhook_dispatch_offsets (log_partition, next_offset)"
        " SELECT * FROM unnest($1::int[], $2::bigint[]) ON CONFLICT DO NOTHING",
        parts,
        [firsts[p] for p in parts],
    )
    rows = await conn.fetch(
        "SELECT log_partition, next_offset FROM webhook_dispatch_offsets"
        " WHERE log_partition = ANY($1::int[]) ORDER BY log_partition FOR UPDATE",
        parts,
    )
    return {r["log_partition"]: r["next_offset"] for r in rows}


async def store_offsets(conn: asyncpg.Connection, positions: Mapping[int, int]) -> None:
    """The next offset to read per partition, moved only forward."""
    await conn.execute(
        "UPDATE webhook_dispatch_offsets o SET next_offset = GREATEST(o.next_offset, x.n)"
        " FROM unnest($1::int[], $2::bigint[]) AS x(p, n) WHERE o.log_partition = x.p",
        list(positions),
        list(positions.values()),
    )


async def load_offsets(conn: asyncpg.Connection) -> dict[int, int]:
    rows = await conn.fetch("SELECT log_partition, next_offset FROM webhook_dispatch_offsets")
    return {r["log_partition"]: r["next_offset"] for r in rows}


async def clamp_offsets(conn: asyncpg.Connection, ends: Mapping[int, int]) -> dict[int, int]:
    """Bring positions beyond their partition's end back to it (a log restored from the journal
    lacks what was never projected; new records take those offsets and must not be skipped);
    answers the positions moved, with where they were."""
    rows = await conn.fetch(
        "UPDATE webhook_dispatch_offsets o SET next_offset = x.n"
        " FROM unnest($1::int[], $2::bigint[]) AS x(p, n),"
        " (SELECT log_partition, next_offset FROM webhook_dispatch_offsets) AS was"
        " WHERE o.log_partition = x.p AND was.log_partition = x.p AND o.next_offset > x.n"
        " RETURNING o.log_partition, was.next_offset AS was",
        list(ends),
        list(ends.values()),
    )
    return {r["log_partition"]: r["was"] for r in rows}


async def subscribers(conn: asyncpg.Connection) -> list[tuple[UUID, frozenset[str], datetime]]:
    """The enabled subscriptions' ids, event types and creation times (a disabled one receives
    nothing recorded while it is disabled)."""
    rows = await conn.fetch(
        "SELECT id, event_types, created_at FROM webhook_subscriptions WHERE enabled"
    )
    return [(r["id"], frozenset(r["event_types"]), r["created_at"]) for r in rows]


async def insert_deliveries(conn: asyncpg.Connection, rows: Sequence[NewDelivery]) -> int:
    """Create pending deliveries: a subject's first is due now, the others queue behind it
    (no next_attempt_at until it settles: projections/webhook_queue.py); an event read twice
    (a duplicate record, a replay) creates none again. Answers how many were created."""
    if not rows:
        return 0
    queues = sorted({(r.subscription_id, r.event.subject_id) for r in rows})
    await webhook_queue.lock_subjects(conn, queues)
    created = await conn.fetchval(
        "WITH made AS (INSERT INTO webhook_deliveries (id, subscription_id, event_id,"
        " event_type, subject_id, log_partition, log_offset, payload)"
        " SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[],"
        " $5::text[], $6::int[], $7::bigint[], $8::jsonb[])"
        " ON CONFLICT (subscription_id, event_id) DO NOTHING RETURNING 1)"
        " SELECT count(*) FROM made",
        [uuid4() for _ in rows],
        [r.subscription_id for r in rows],
        [r.event.event_id for r in rows],
        [r.event.type for r in rows],
        [r.event.subject_id for r in rows],
        [r.partition for r in rows],
        [r.offset for r in rows],
        [json.dumps(delivery_payload(r.event), separators=(",", ":")) for r in rows],
    )
    await webhook_queue.release_heads(conn, queues)
    return int(created)


@dataclass(frozen=True, slots=True)
class LostTail:
    """What a restored log's ends did to the dispatcher's bookkeeping."""

    #: partitions whose position was past the restored end, with where it was
    moved: dict[int, int]
    #: pending and parked deliveries of events the restored log lacks, deleted
    dropped: int
    #: succeeded deliveries of such events: receivers got events the ledger no longer holds
    delivered: int


_TAIL = """
FROM unnest($1::int[], $2::bigint[]) AS x(p, n)
RIGHT JOIN webhook_deliveries d ON d.log_partition = x.p
WHERE d.log_offset >= COALESCE(x.n, 0)
"""


async def rewind_to_log(conn: asyncpg.Connection, ends: Mapping[int, int]) -> LostTail:
    """After a restore whose partitions end at `ends` (a partition not named holds nothing):
    bring every position to at most its end, so the events appended next at those offsets are
    fanned out, and delete the pending and parked deliveries of the lost tail (events at or
    past an end: the restored log and the journal lack them), which would otherwise be sent,
    and come before new events of their subjects. In the restore's transaction."""
    parts, marks = list(ends), list(ends.values())
    delivered = await conn.fetchval(
        f"SELECT count(*) {_TAIL} AND d.status = 'succeeded'", parts, marks
    )
    dropped = await conn.fetchval(
        "WITH gone AS (DELETE FROM webhook_deliveries WHERE id IN"
        f" (SELECT d.id {_TAIL} AND d.status <> 'succeeded') RETURNING 1)"
        " SELECT count(*) FROM gone",
        parts,
        marks,
    )
    rows = await conn.fetch(
        "WITH was AS (SELECT o.log_partition, o.next_offset, COALESCE(x.n, 0) AS n"
        " FROM webhook_dispatch_offsets o LEFT JOIN unnest($1::int[], $2::bigint[]) AS x(p, n)"
        " ON x.p = o.log_partition WHERE o.next_offset > COALESCE(x.n, 0) FOR UPDATE OF o)"
        " UPDATE webhook_dispatch_offsets o SET next_offset = was.n FROM was"
        " WHERE o.log_partition = was.log_partition RETURNING o.log_partition, was.next_offset",
        parts,
        marks,
    )
    return LostTail(
        {r["log_partition"]: r["next_offset"] for r in rows}, int(dropped), int(delivered)
    )
