"""The identifier projection: which subject an e-mail address or phone number belongs to,
found by blind index. Rows hold the ciphertext only, never the value in clear.

One address belongs to one subject at a time: the API refuses to link an address that is
linked elsewhere. Should the log still hold two live links (two requests racing), the most
recently recorded one wins the lookup.
The same concept as services/api/identifiers.py, on the projections' side.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final
from uuid import UUID

import asyncpg

from projections.state import Fact, FactKey
from projections.subject_state import fact_from_row
from schemas import events as ev
from schemas.events import Event


@dataclass(frozen=True, slots=True)
class IdentifierRow:
    identifier_type: str
    blind_index: bytes
    subject_id: str
    linked: bool
    ciphertext: bytes | None
    event_id: UUID
    position: tuple[int, int]
    recorded_at: datetime


def row_for(event: Event, position: tuple[int, int]) -> IdentifierRow | None:
    """The identifier row an event sets, or None for events that touch no identifier."""
    if event.type not in (ev.IDENTIFIER_LINKED, ev.IDENTIFIER_UNLINKED):
        return None
    linked = event.type == ev.IDENTIFIER_LINKED
    return IdentifierRow(
        identifier_type=event.data["identifier_type"],
        blind_index=bytes(event.data["blind_index"]),
        subject_id=event.subject_id,
        linked=linked,
        ciphertext=bytes(event.data["ciphertext"]) if linked else None,
        event_id=event.event_id,
        position=position,
        recorded_at=event.recorded_at,
    )


UPSERT = """
INSERT INTO identifiers AS i (identifier_type, blind_index, subject_id, linked, ciphertext,
                              event_id, log_partition, log_offset, recorded_at)
SELECT * FROM unnest($1::text[], $2::bytea[], $3::text[], $4::bool[], $5::bytea[], $6::uuid[],
                     $7::int[], $8::bigint[], $9::timestamptz[])
ON CONFLICT (identifier_type, blind_index, subject_id) DO UPDATE SET
    linked = EXCLUDED.linked, ciphertext = EXCLUDED.ciphertext, event_id = EXCLUDED.event_id,
    log_partition = EXCLUDED.log_partition, log_offset = EXCLUDED.log_offset,
    recorded_at = EXCLUDED.recorded_at
WHERE (i.log_partition, i.log_offset) < (EXCLUDED.log_partition, EXCLUDED.log_offset)
"""


async def upsert(conn: asyncpg.Connection, rows: Iterable[IdentifierRow]) -> None:
    latest: dict[tuple[str, bytes, str], IdentifierRow] = {}
    for row in rows:
        key = (row.identifier_type, row.blind_index, row.subject_id)
        held = latest.get(key)
        if held is None or row.position > held.position:
            latest[key] = row
    if not latest:
        return
    got = list(latest.values())
    await conn.execute(
        UPSERT,
        [r.identifier_type for r in got],
        [r.blind_index for r in got],
        [r.subject_id for r in got],
        [r.linked for r in got],
        [r.ciphertext for r in got],
        [r.event_id for r in got],
        [r.position[0] for r in got],
        [r.position[1] for r in got],
        [r.recorded_at for r in got],
    )


LOOKUP = """
SELECT DISTINCT ON (blind_index) blind_index, subject_id
FROM identifiers
WHERE identifier_type = $1 AND blind_index = ANY($2::bytea[]) AND linked
ORDER BY blind_index, recorded_at DESC, subject_id
"""


async def lookup(
    conn: asyncpg.Connection | asyncpg.Pool, identifier_type: str, indexes: Sequence[bytes]
) -> dict[bytes, str]:
    """Blind index -> subject id for the indexes that are linked; one round trip for all."""
    if not indexes:
        return {}
    rows = await conn.fetch(LOOKUP, identifier_type, list(indexes))
    return {bytes(r["blind_index"]): r["subject_id"] for r in rows}


async def linked_to(
    conn: asyncpg.Connection | asyncpg.Pool, subject_id: str
) -> list[asyncpg.Record]:
    """The identifiers currently linked to a subject (type, blind index, ciphertext)."""
    return await conn.fetch(
        "SELECT identifier_type, blind_index, ciphertext, recorded_at FROM identifiers"
        " WHERE subject_id = $1 AND linked ORDER BY identifier_type, recorded_at",
        subject_id,
    )


#: Linked identifiers after the cursor whose subject may be suppressed on the channel (an
#: objection or a withdrawal of every purpose is recorded), with the facts that decide it.
#: Where two subjects hold an index, the most recent link counts, as in identifiers.lookup.
#: Shaped so that PostgreSQL walks the identifiers' primary key in blind-index order, probes
#: each subject's facts by its key and stops at the limit: a page costs the identifiers it
#: passes, never the whole register. (The scalar sub-select, the MATERIALIZED candidates and
#: OFFSET 0 keep the planner from turning the probes into hash joins over every fact.)
OBJECTING_HOLDERS: Final = """
WITH candidates AS MATERIALIZED (
    SELECT l.blind_index, l.subject_id FROM (
        SELECT DISTINCT ON (blind_index) blind_index, subject_id
        FROM identifiers
        WHERE identifier_type = $1 AND linked AND blind_index > $2
        ORDER BY blind_index, recorded_at DESC, subject_id
    ) AS l
    WHERE (
        SELECT true FROM subject_facts f
        WHERE f.subject_id = l.subject_id AND f.scope_b IN ($3, '*') AND (
            (f.kind = 'dm_objection' AND f.event_type = 'DirectMarketingObjected')
            OR (f.kind = 'consent' AND f.scope_a = '*' AND f.event_type = 'ConsentWithdrawn')
        )
        LIMIT 1
    )
    ORDER BY l.blind_index
    LIMIT $4
)
SELECT c.blind_index, f.kind, f.scope_a, f.scope_b, f.event_type, f.event_id,
       f.log_partition, f.log_offset, f.occurred_at, f.until, f.outcome
FROM candidates c
CROSS JOIN LATERAL (
    SELECT * FROM subject_facts f
    WHERE f.subject_id = c.subject_id
        AND f.kind IN ('consent', 'dm_objection') AND f.scope_b IN ($3, '*')
    OFFSET 0
) AS f
ORDER BY c.blind_index
"""


async def objecting_holders(
    conn: asyncpg.Connection | asyncpg.Pool,
    identifier_type: str,
    channel: str,
    after: bytes,
    limit: int,
) -> dict[bytes, dict[FactKey, Fact]]:
    """Up to `limit` linked identifiers after `after`, in blind-index order, whose subject
    objected to direct marketing or withdrew every purpose on the channel, each with the
    subject's consent and objection facts there (OBJECTING_HOLDERS)."""
    rows = await conn.fetch(OBJECTING_HOLDERS, identifier_type, after, channel, limit)
    states: dict[bytes, dict[FactKey, Fact]] = {}
    for row in rows:
        fact = fact_from_row(row)
        states.setdefault(bytes(row["blind_index"]), {})[fact.key] = fact
    return states
