"""The journal's hash chain in PostgreSQL: what a batch chains onto, and the stored entries
read back for verification (the chain itself: projections/hash_chain.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from uuid import UUID

import asyncpg

from projections.chain_verify import JournalEntry, SubjectVerifier
from projections.hash_chain import GENESIS, subject_link
from projections.journal import JournalRow
from schemas.codec import EventCodec
from schemas.events import Event

#: One round trip: which of the batch's event ids are journaled already ('e' rows), and the
#: latest hash of each of its subjects in log order ('h' rows; none for a new subject).
PRIOR = """
SELECT 'e' AS kind, event_id::text AS key, NULL::bytea AS chain_hash
FROM journal WHERE event_id = ANY($1::uuid[])
UNION ALL
SELECT 'h', s.subject_id, h.chain_hash
FROM unnest($2::text[]) AS s(subject_id)
CROSS JOIN LATERAL (
    SELECT j.chain_hash FROM journal j
    WHERE j.subject_id = s.subject_id
    ORDER BY j.log_partition DESC, j.log_offset DESC
    LIMIT 1
) AS h
"""


async def prior(
    conn: asyncpg.Connection, event_ids: Sequence[UUID], subjects: Sequence[str]
) -> tuple[set[UUID], dict[str, bytes]]:
    """The event ids already journaled, and each known subject's chain head."""
    if not event_ids:
        return set(), {}
    rows = await conn.fetch(PRIOR, list(event_ids), sorted(set(subjects)))
    journaled = {UUID(r["key"]) for r in rows if r["kind"] == "e"}
    heads = {r["key"]: bytes(r["chain_hash"]) for r in rows if r["kind"] == "h"}
    return journaled, heads


_COLUMNS = """
SELECT event_id, subject_id, event_type, log_partition, log_offset, occurred_at, recorded_at,
       payload::text AS payload, record_value, chain_hash
FROM journal
"""
SUBJECT_ENTRIES = _COLUMNS + "WHERE subject_id = $1 ORDER BY log_partition, log_offset"
ALL_ENTRIES = _COLUMNS + "ORDER BY subject_id, log_partition, log_offset"


SUBJECT_KNOWN = """
SELECT EXISTS (SELECT 1 FROM journal WHERE subject_id = $1)
    OR EXISTS (SELECT 1 FROM erasures WHERE subject_id = $1)
"""


def entry_from_row(row: asyncpg.Record) -> JournalEntry:
    return JournalEntry(
        event_id=row["event_id"],
        subject_id=row["subject_id"],
        event_type=row["event_type"],
        partition=row["log_partition"],
        offset=row["log_offset"],
        occurred_at=row["occurred_at"],
        recorded_at=row["recorded_at"],
        payload=row["payload"],
        value=bytes(row["record_value"]),
        chain_hash=bytes(row["chain_hash"]),
    )


async def subject_entries(conn: asyncpg.Connection, subject_id: str) -> AsyncIterator[JournalEntry]:
    """One subject's entries in log order, streamed (call it inside a transaction)."""
    async for row in conn.cursor(SUBJECT_ENTRIES, subject_id, prefetch=500):
        yield entry_from_row(row)


async def subject_known(conn: asyncpg.Connection | asyncpg.Pool, subject_id: str) -> bool:
    """Whether the ledger holds anything of the subject: a journal entry, or its erasure (whose
    entries the retention job may have purged)."""
    known: bool = await conn.fetchval(SUBJECT_KNOWN, subject_id)
    return known


async def all_entries(conn: asyncpg.Connection) -> AsyncIterator[JournalEntry]:
    """Every entry, subject after subject, each in log order; a server-side cursor keeps the
    memory bounded (call it inside a transaction)."""
    async for row in conn.cursor(ALL_ENTRIES, prefetch=2000):
        yield entry_from_row(row)


#: a decoded record the batch may journal: (event, partition, offset, value, MAC header or None)
Candidate = tuple[Event, int, int, bytes, str | None]


async def link_new(
    conn: asyncpg.Connection, candidates: Sequence[Candidate]
) -> tuple[list[JournalRow], list[Candidate]]:
    """Chain the candidates (in log order) whose event is not journaled yet onto their
    subjects' heads; returns those rows and the repeats (an event seen before, chained once).
    """
    journaled, heads = await prior(
        conn, [c[0].event_id for c in candidates], [c[0].subject_id for c in candidates]
    )
    rows: list[JournalRow] = []
    repeats: list[Candidate] = []
    for candidate in candidates:
        event, partition, offset, value, mac = candidate
        if event.event_id in journaled:
            repeats.append(candidate)
            continue
        journaled.add(event.event_id)
        head = subject_link(heads.get(event.subject_id, GENESIS), value)
        heads[event.subject_id] = head
        rows.append(JournalRow(event, partition, offset, value, head, mac))
    return rows, repeats


async def verify_subject(
    conn: asyncpg.Connection, codec: EventCodec, subject_id: str
) -> SubjectVerifier:
    """Recompute one subject's chain from its stored entries, in one read-only snapshot."""
    verifier = SubjectVerifier(subject_id, codec)
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        async for entry in subject_entries(conn, subject_id):
            verifier.feed(entry)
    return verifier
