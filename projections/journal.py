"""The journal projection: every event once, with its log position, queryable by subject.

It keeps the record's original bytes too, so the log can be restored from it exactly.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from schemas.events import Event, rfc3339


@dataclass(frozen=True, slots=True)
class JournalRow:
    event: Event
    partition: int
    offset: int
    value: bytes
    #: the subject chain's hash of this entry (projections/hash_chain.py)
    chain_hash: bytes


def event_payload(event: Event) -> dict[str, Any]:
    """The event as JSON: common fields, then the type-specific ones, times in RFC 3339."""
    fields = {"type": event.type, **event.envelope(), **event.data}
    return {name: _json_value(value) for name, value in fields.items()}


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return value


INSERT = """
INSERT INTO journal (event_id, subject_id, event_type, log_partition, log_offset,
                     occurred_at, recorded_at, payload, record_value, chain_hash)
SELECT e, s, t, p, o, oa, ra, pl::json, v, h
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int[], $5::bigint[],
            $6::timestamptz[], $7::timestamptz[], $8::text[], $9::bytea[], $10::bytea[])
     AS x(e, s, t, p, o, oa, ra, pl, v, h)
ON CONFLICT (event_id) DO NOTHING
RETURNING event_id
"""


async def insert(conn: asyncpg.Connection, rows: Sequence[JournalRow]) -> set[UUID]:
    """Insert the rows whose event id is new; returns those ids (the events to apply)."""
    if not rows:
        return set()
    inserted = await conn.fetch(
        INSERT,
        [r.event.event_id for r in rows],
        [r.event.subject_id for r in rows],
        [r.event.type for r in rows],
        [r.partition for r in rows],
        [r.offset for r in rows],
        [r.event.occurred_at for r in rows],
        [r.event.recorded_at for r in rows],
        [json.dumps(event_payload(r.event), separators=(",", ":")) for r in rows],
        [r.value for r in rows],
        [r.chain_hash for r in rows],
    )
    return {r["event_id"] for r in inserted}


#: Each event as the JSON text of the answer, built by PostgreSQL: the payload is spliced in as
#: the text the journal stores (valid JSON, written by `insert`), never parsed and encoded
#: again in Python, so a long history is answered in a few ms.
HISTORY_JSON = """
SELECT '{"event_id":"' || event_id || '","type":' || to_json(event_type)::text
       || ',"partition":' || log_partition || ',"offset":' || log_offset
       || ',"payload":' || payload::text || '}' AS item
FROM journal
WHERE subject_id = $1 AND (log_partition, log_offset) > ($2, $3)
ORDER BY log_partition, log_offset
LIMIT $4
"""


async def history_json(
    conn: asyncpg.Connection | asyncpg.Pool,
    subject_id: str,
    *,
    after: tuple[int, int] = (-1, -1),
    limit: int = 1000,
) -> str:
    """A subject's events in log order, each with its position and payload, as a JSON array
    of `{event_id, type, partition, offset, payload}`."""
    rows = await conn.fetch(HISTORY_JSON, subject_id, after[0], after[1], limit)
    return "[" + ",".join(r["item"] for r in rows) + "]"
