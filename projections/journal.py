"""The journal projection: every event once, with its log position, queryable by subject.

It keeps the record's original bytes and MAC header too, so the log can be restored from it
exactly.
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
    #: the record's MAC header (schemas/record_mac.py), None if it had no valid one
    mac: str | None


def event_payload(event: Event) -> dict[str, Any]:
    """The event as JSON: common fields, then the type-specific ones, times in RFC 3339."""
    fields = {"type": event.type, **event.envelope(), **event.data}
    return {name: _json_value(value) for name, value in fields.items()}


#: compact, ASCII-only: the text `insert` stores for each event (the journal keeps it verbatim)
_PAYLOAD_ENCODER = json.JSONEncoder(separators=(",", ":"), check_circular=False)


def payload_json(event: Event) -> str:
    """`json.dumps(event_payload(event), separators=(",", ":"))`, built without the envelope's
    intermediate dicts: the projector writes one for every event it journals."""
    fields: dict[str, Any] = {
        "type": event.type,
        "event_id": str(event.event_id),
        "subject_id": event.subject_id,
        "occurred_at": rfc3339(event.occurred_at),
        "recorded_at": rfc3339(event.recorded_at),
        "source": {
            "method": event.source.method,
            "system": event.source.system,
            "collection_point": event.source.collection_point,
        },
        "actor": {"type": event.actor.type, "id": event.actor.id},
        "notice_version": event.notice_version,
    }
    for name, value in event.data.items():
        fields[name] = value if value is None or type(value) is str else _json_value(value)
    return _PAYLOAD_ENCODER.encode(fields)


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dict):  # a nested record (an event's context)
        return {k: v if v is None or type(v) is str else _json_value(v) for k, v in value.items()}
    return value


COLUMNS = (
    "event_id",
    "subject_id",
    "event_type",
    "log_partition",
    "log_offset",
    "occurred_at",
    "recorded_at",
    "payload",
    "record_value",
    "chain_hash",
    "record_mac",
)


class AlreadyJournaled(Exception):
    """An event of the rows was journaled by another transaction meanwhile (its id is taken)."""


async def insert(conn: asyncpg.Connection, rows: Sequence[JournalRow]) -> None:
    """Insert rows whose event ids the caller found new (in its transaction), in one COPY:
    the cheapest bulk insert for the client, which encodes a row at a time instead of ten
    arrays an element at a time. Raises AlreadyJournaled when an id is taken meanwhile."""
    if not rows:
        return
    try:
        await conn.copy_records_to_table(
            "journal",
            records=[
                (
                    r.event.event_id,
                    r.event.subject_id,
                    r.event.type,
                    r.partition,
                    r.offset,
                    r.event.occurred_at,
                    r.event.recorded_at,
                    payload_json(r.event),
                    r.value,
                    r.chain_hash,
                    r.mac,
                )
                for r in rows
            ],
            columns=COLUMNS,
        )
    except asyncpg.UniqueViolationError as exc:
        raise AlreadyJournaled(str(exc)) from exc


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


async def stored_record(
    conn: asyncpg.Connection | asyncpg.Pool, event_id: UUID
) -> tuple[str, bytes] | None:
    """An event's type and its record's original bytes, or None when it is not journaled."""
    row = await conn.fetchrow(
        "SELECT event_type, record_value FROM journal WHERE event_id = $1", event_id
    )
    return None if row is None else (row["event_type"], bytes(row["record_value"]))


async def positions_of(
    conn: asyncpg.Connection | asyncpg.Pool, event_ids: Sequence[UUID]
) -> dict[UUID, tuple[int, int]]:
    """Where each of these events is in the log, for those journaled."""
    rows = await conn.fetch(
        "SELECT event_id, log_partition, log_offset FROM journal WHERE event_id = ANY($1::uuid[])",
        list(event_ids),
    )
    return {r["event_id"]: (r["log_partition"], r["log_offset"]) for r in rows}


async def subject_events(
    conn: asyncpg.Connection, subject_id: str
) -> list[tuple[str, dict[str, Any], int]]:
    """A subject's events in log order as (type, payload, partition)."""
    rows = await conn.fetch(
        "SELECT event_type, payload::text AS payload, log_partition FROM journal"
        " WHERE subject_id = $1 ORDER BY log_partition, log_offset",
        subject_id,
    )
    return [(r["event_type"], json.loads(r["payload"]), r["log_partition"]) for r in rows]


async def entry_count(conn: asyncpg.Connection) -> int:
    """How many events the journal holds."""
    total: int = await conn.fetchval("SELECT count(*) FROM journal")
    return total
