"""Erasure in the projections (tables `erasures`, `suppressed_identifiers`, the tombstones of
`subject_keys`, the `suppression` facts of `subject_facts`).
One concept, three sides: services/api/erasure.py, services/rules/erasure.py.

Design: docs/developers/design/erasure.md
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final

import asyncpg

from projections.journal import JournalRow
from projections.state import Position
from schemas import events as ev

#: the suppression reason an erasure leaves
ERASED: Final = "erased"
#: taken by every batch that erases or links, for the rest of its transaction
_LOCK_ID: Final = 0x5E2A5E

#: the identifiers the subject held just before the erasure: those whose latest link event
#: earlier in its log is a link. Read from the journal (which holds the batch already), not
#: from the identifier rows: a batch keeps only each row's latest state, and a later unlink in
#: the same batch must not hide what the subject held at the erasure.
HELD = """
SELECT identifier_type, blind_index FROM (
    SELECT DISTINCT ON (payload->>'identifier_type', payload->>'blind_index')
           event_type, payload->>'identifier_type' AS identifier_type,
           decode(payload->>'blind_index', 'base64') AS blind_index
    FROM journal
    WHERE subject_id = $1 AND event_type IN ('IdentifierLinked', 'IdentifierUnlinked')
      AND (log_partition, log_offset) < ($2, $3)
    ORDER BY payload->>'identifier_type', payload->>'blind_index',
             log_partition DESC, log_offset DESC
) AS latest
WHERE event_type = 'IdentifierLinked'
"""

#: the earliest erasure of an identifier is its entry, whichever partition is applied first
SUPPRESS = """
INSERT INTO suppressed_identifiers AS s (identifier_type, blind_index, reason, since, event_id)
SELECT t, b, $3, $4, $5 FROM unnest($1::text[], $2::bytea[]) AS x(t, b)
ON CONFLICT (identifier_type, blind_index) DO UPDATE
SET reason = EXCLUDED.reason, since = EXCLUDED.since, event_id = EXCLUDED.event_id
WHERE (EXCLUDED.since, EXCLUDED.event_id) < (s.since, s.event_id)
"""

FORGET = """
DELETE FROM identifiers WHERE subject_id = $1 AND (log_partition, log_offset) < ($2, $3)
"""

RECORD = """
INSERT INTO erasures (subject_id, event_id, ground, request_id, erased_at, suppressed)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (subject_id) DO NOTHING
"""

#: the key row becomes a tombstone; a concurrent insert of a new key waits on the unique id
SHRED = """
INSERT INTO subject_keys AS k (subject_id, master_key_id, wrapped_key, shredded_at)
VALUES ($1, NULL, NULL, now())
ON CONFLICT (subject_id) DO UPDATE
SET master_key_id = NULL, wrapped_key = NULL, shredded_at = coalesce(k.shredded_at, now())
"""

#: other subjects that hold one of the identifiers (a link raced the erasure)
HOLDERS = """
SELECT DISTINCT ON (i.subject_id) i.subject_id, i.log_partition, i.log_offset
FROM identifiers i JOIN unnest($1::text[], $2::bytea[]) AS x(t, b)
    ON i.identifier_type = x.t AND i.blind_index = x.b
WHERE i.linked
ORDER BY i.subject_id, i.log_partition DESC, i.log_offset DESC
"""

CLEAR_FACTS = "DELETE FROM subject_facts WHERE kind = 'suppression' AND subject_id = ANY($1)"

#: per subject and identifier type, the latest link of a suppressed identifier
SET_FACTS = """
INSERT INTO subject_facts (subject_id, kind, scope_a, scope_b, event_type, event_id,
                           log_partition, log_offset, occurred_at)
SELECT DISTINCT ON (i.subject_id, i.identifier_type)
       i.subject_id, 'suppression', i.identifier_type, '*', 'IdentifierLinked', i.event_id,
       i.log_partition, i.log_offset, greatest(i.recorded_at, s.since)
FROM identifiers i
JOIN suppressed_identifiers s
    ON s.identifier_type = i.identifier_type AND s.blind_index = i.blind_index
WHERE i.subject_id = ANY($1::text[]) AND i.linked
ORDER BY i.subject_id, i.identifier_type, i.log_partition DESC, i.log_offset DESC
"""


async def shred(conn: asyncpg.Connection | asyncpg.Pool, subject_id: str) -> None:
    """Destroy the subject's data key for good (idempotent)."""
    await conn.execute(SHRED, subject_id)


async def apply(
    conn: asyncpg.Connection, fresh: Sequence[JournalRow]
) -> list[tuple[str, Position]]:
    """Apply the batch's erasures and identifier changes (in its transaction, after the
    identifier rows); returns the subjects outside the batch whose facts changed, with a
    position on their partition, for the state feed."""
    erased = sorted(
        (r for r in fresh if r.event.type == ev.SUBJECT_ERASED),
        key=lambda r: (r.partition, r.offset),
    )
    # an erased subject's identifier rows go, and its suppression facts with them
    touched = {
        r.event.subject_id
        for r in fresh
        if r.event.type in (ev.IDENTIFIER_LINKED, ev.IDENTIFIER_UNLINKED, ev.SUBJECT_ERASED)
    }
    if not touched:
        return []
    # Two projectors applying other partitions could each miss the other's half (a link of an
    # identifier another batch suppresses): this step takes turns, until the batch commits.
    await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_ID)
    suppressed: list[tuple[str, bytes]] = []
    for row in erased:
        suppressed += await _erase(conn, row)
    suppressed += await _late_links(conn, fresh)
    others: list[tuple[str, Position]] = []
    if suppressed:
        holders = await conn.fetch(HOLDERS, [t for t, _ in suppressed], [b for _, b in suppressed])
        others = [
            (h["subject_id"], (h["log_partition"], h["log_offset"]))
            for h in holders
            if h["subject_id"] not in touched
        ]
        touched.update(s for s, _ in others)
    subjects = sorted(touched)
    await conn.execute(CLEAR_FACTS, subjects)
    await conn.execute(SET_FACTS, subjects)
    return others


#: erasures already applied of the subjects given, with their place in the log (none once
#: retention purged the entry: any link applied after a purge is later in the log)
ERASED_BEFORE = """
SELECT e.subject_id, e.erased_at, e.event_id, j.log_partition, j.log_offset
FROM erasures e LEFT JOIN journal j ON j.event_id = e.event_id
WHERE e.subject_id = ANY($1::text[])
"""


async def _late_links(
    conn: asyncpg.Connection, fresh: Sequence[JournalRow]
) -> list[tuple[str, bytes]]:
    """Links that reached the log after their subject's SubjectErased (a link or an import
    that raced the erasure): the identifier is suppressed and forgotten like the ones the
    subject held, so it cannot come back unsuppressed. Decided from the projected erasures
    only, so a replay decides the same."""
    links = [r for r in fresh if r.event.type == ev.IDENTIFIER_LINKED]
    if not links:
        return []
    rows = await conn.fetch(ERASED_BEFORE, sorted({r.event.subject_id for r in links}))
    erasures = {r["subject_id"]: r for r in rows}
    out: list[tuple[str, bytes]] = []
    for link in links:
        erasure = erasures.get(link.event.subject_id)
        if erasure is None or _before(link, erasure):
            continue  # a link before the erasure was judged by HELD when the erasure applied
        kind, index = link.event.data["identifier_type"], bytes(link.event.data["blind_index"])
        await conn.execute(
            SUPPRESS, [kind], [index], ERASED, erasure["erased_at"], erasure["event_id"]
        )
        # only the row this link set: a later unlink in the same batch already replaced it,
        # as it would had the two been applied in separate batches
        await conn.execute(
            "DELETE FROM identifiers WHERE subject_id = $1 AND identifier_type = $2"
            " AND blind_index = $3 AND (log_partition, log_offset) = ($4, $5)",
            link.event.subject_id,
            kind,
            index,
            link.partition,
            link.offset,
        )
        out.append((kind, index))
    return out


def _before(link: JournalRow, erasure: asyncpg.Record) -> bool:
    """Whether the link precedes the erasure in its subject's log (the erasure may have been
    applied in the same batch, after the link)."""
    if erasure["log_partition"] is None:
        return False
    return (link.partition, link.offset) < (erasure["log_partition"], erasure["log_offset"])


async def _erase(conn: asyncpg.Connection, row: JournalRow) -> list[tuple[str, bytes]]:
    event = row.event
    subject, at = event.subject_id, (row.partition, row.offset)
    held = [
        (r["identifier_type"], bytes(r["blind_index"]))
        for r in await conn.fetch(HELD, subject, *at)
    ]
    if held:
        await conn.execute(
            SUPPRESS,
            [t for t, _ in held],
            [b for _, b in held],
            ERASED,
            event.recorded_at,
            event.event_id,
        )
    await conn.execute(FORGET, subject, *at)
    await conn.execute(
        RECORD,
        subject,
        event.event_id,
        event.data["ground"],
        event.data.get("request_id"),
        event.recorded_at,  # the as-of rule counts from when the ledger knew it
        len(held),
    )
    await shred(conn, subject)
    return held


async def is_erased(conn: asyncpg.Connection | asyncpg.Pool, subject_id: str) -> bool:
    """Whether the subject is erased: its key is shredded (the API does it right after the
    broker's acknowledgement) or the projector applied its SubjectErased."""
    found: bool = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM subject_keys WHERE subject_id = $1"
        " AND shredded_at IS NOT NULL) OR EXISTS (SELECT 1 FROM erasures WHERE subject_id = $1)",
        subject_id,
    )
    return found


async def suppressed(
    conn: asyncpg.Connection | asyncpg.Pool, identifier_type: str, indexes: Sequence[bytes]
) -> dict[bytes, tuple[str, datetime]]:
    """Blind index -> (reason, since) for the indexes on the suppression list."""
    if not indexes:
        return {}
    rows = await conn.fetch(
        "SELECT blind_index, reason, since FROM suppressed_identifiers"
        " WHERE identifier_type = $1 AND blind_index = ANY($2::bytea[])",
        identifier_type,
        list(indexes),
    )
    return {bytes(r["blind_index"]): (r["reason"], r["since"]) for r in rows}


async def entries_after(
    conn: asyncpg.Connection | asyncpg.Pool, identifier_type: str, after: bytes, limit: int
) -> list[asyncpg.Record]:
    """Suppression entries in blind-index order after `after`, at most `limit`."""
    return await conn.fetch(
        "SELECT blind_index, reason, since, event_id FROM suppressed_identifiers"
        " WHERE identifier_type = $1 AND blind_index > $2 ORDER BY blind_index LIMIT $3",
        identifier_type,
        after,
        limit,
    )


async def erased_among(
    conn: asyncpg.Connection | asyncpg.Pool, subject_ids: Sequence[str]
) -> set[str]:
    """The subjects of `subject_ids` that are erased (as `is_erased`), in one round trip."""
    if not subject_ids:
        return set()
    rows = await conn.fetch(
        "SELECT subject_id FROM erasures WHERE subject_id = ANY($1::text[])"
        " UNION SELECT subject_id FROM subject_keys"
        " WHERE subject_id = ANY($1::text[]) AND shredded_at IS NOT NULL",
        list(subject_ids),
    )
    return {r["subject_id"] for r in rows}


async def erasure_record(
    conn: asyncpg.Connection | asyncpg.Pool, subject_id: str
) -> asyncpg.Record | None:
    """The subject's erasure (erased_at, ground) and what the retention job purged of it
    (purged_at, purged_events, chain_head), or None when it is not erased."""
    return await conn.fetchrow(
        "SELECT erased_at, ground, purged_at, purged_events, chain_head FROM erasures"
        " WHERE subject_id = $1",
        subject_id,
    )
