"""What the ledger knew at an instant: a subject's state folded from the events it had recorded
by then (by `recorded_at`, never `occurred_at`).
The same concept as services/api/as_of.py, on the projections' side.

Design: docs/developers/design/proof.md
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from projections import notices
from projections.outdating import NO_NOTICES, Notice, Notices
from projections.state import ALL, SUPPRESSION, Fact, FactKey, Position, fold
from projections.subject_state import fact_from_row
from schemas import events as ev
from schemas.codec import EventCodec
from schemas.events import Event

#: (identifier type, blind index)
Identifier = tuple[str, bytes]


@dataclass(frozen=True, slots=True)
class Suppression:
    """An entry of the suppression list: `since` as the list has it, `known_from` when the
    ledger recorded the erasure that made it."""

    identifier: Identifier
    since: datetime
    known_from: datetime


@dataclass(frozen=True, slots=True)
class PurgedProof:
    """An erased subject whose records the retention job purged (services/proof/retention.py): only
    the erasure fact is left, so what the ledger knew before the erasure is gone by design."""

    erased_at: datetime
    purged_at: datetime
    erasure: Fact


class ProofPurged(Exception):
    """The instant asked about is before an erasure whose proof has been purged."""

    def __init__(self, proof: PurgedProof) -> None:
        super().__init__(f"the records before {proof.erased_at.isoformat()} were purged")
        self.proof = proof


@dataclass(frozen=True, slots=True)
class KnownAt:
    """A subject's state as of `at`, the log position of the latest event it folded, and the
    privacy notices published by then (a material change outdates a grant only once known)."""

    at: datetime
    state: dict[FactKey, Fact]
    position: Position | None
    events: int
    notices: Notices = NO_NOTICES


def recorded_by(
    events: Iterable[tuple[Event, Position]], at: datetime
) -> list[tuple[Event, Position]]:
    """The events recorded at or before `at`, in log order."""
    return sorted(((e, p) for e, p in events if e.recorded_at <= at), key=lambda x: x[1])


def held(events: Iterable[tuple[Event, Position]]) -> dict[Identifier, tuple[Event, Position]]:
    """The identifiers linked to the subject after `events` (in log order), with their link."""
    out: dict[Identifier, tuple[Event, Position]] = {}
    for event, position in events:
        if event.type in (ev.IDENTIFIER_LINKED, ev.IDENTIFIER_UNLINKED):
            key = (event.data["identifier_type"], bytes(event.data["blind_index"]))
            if event.type == ev.IDENTIFIER_LINKED:
                out[key] = (event, position)
            else:
                out.pop(key, None)
    return out


def suppression_facts(
    links: dict[Identifier, tuple[Event, Position]], entries: Iterable[Suppression]
) -> list[Fact]:
    """Per identifier type, the latest link of a held identifier on the suppression list:
    the fact the projector sets (projections/erasure.py, SET_FACTS)."""
    since = {s.identifier: s.since for s in entries}
    out: dict[str, Fact] = {}
    for (kind, index), (link, position) in links.items():
        listed = since.get((kind, index))
        if listed is None:
            continue
        fact = Fact(
            SUPPRESSION,
            kind,
            ALL,
            ev.IDENTIFIER_LINKED,
            link.event_id,
            position,
            max(link.recorded_at, listed),
        )
        if kind not in out or position > out[kind].position:
            out[kind] = fact
    return list(out.values())


def known_at(
    events: Iterable[tuple[Event, Position]],
    at: datetime,
    published: Iterable[Notice] = (),
    suppressed: Iterable[Suppression] = (),
    purged: PurgedProof | None = None,
) -> KnownAt:
    """Fold the events recorded at or before `at`, in log order; keep the notices whose
    NoticePublished, and the suppressions whose erasure, was recorded by then. (The SQL
    filters the same way; filtering again keeps this function the whole rule.)

    After a purge, the erasure fact stands in for the purged SubjectErased from its time on
    (it decides every purpose but legal obligations, whatever else was purged); before it,
    the answer is not known any more and ProofPurged is raised."""
    if purged is not None and at < purged.erased_at:
        raise ProofPurged(purged)
    counted = recorded_by(events, at)
    state = fold(counted)
    if purged is not None:
        state.setdefault(purged.erasure.key, purged.erasure)
    listed = [s for s in suppressed if s.known_from <= at]
    state.update((f.key, f) for f in suppression_facts(held(counted), listed))
    notices = Notices.of(n for n in published if n.published_at and n.published_at <= at)
    return KnownAt(at, state, counted[-1][1] if counted else None, len(counted), notices)


RECORDED_BY = """
SELECT log_partition, log_offset, record_value
FROM journal
WHERE subject_id = $1 AND recorded_at <= $2
ORDER BY log_partition, log_offset
"""

#: the suppression entries of some identifiers, each known from its erasure's recorded_at
#: (the list's own `since` once the retention job has purged that record)
SUPPRESSED = """
SELECT s.identifier_type, s.blind_index, s.since, coalesce(j.recorded_at, s.since) AS known_from
FROM suppressed_identifiers s
JOIN unnest($1::text[], $2::bytea[]) AS x(t, b)
    ON s.identifier_type = x.t AND s.blind_index = x.b
LEFT JOIN journal j ON j.event_id = s.event_id
WHERE coalesce(j.recorded_at, s.since) <= $3
"""


#: the erasure record and fact of a subject whose proof was purged
PURGED = """
SELECT e.erased_at, e.purged_at, f.kind, f.scope_a, f.scope_b, f.event_type, f.event_id,
       f.log_partition, f.log_offset, f.occurred_at, f.until, f.outcome
FROM erasures e
JOIN subject_facts f ON f.subject_id = e.subject_id AND f.kind = 'erasure'
WHERE e.subject_id = $1 AND e.purged_at IS NOT NULL
"""


async def load(
    conn: asyncpg.Connection | asyncpg.Pool, codec: EventCodec, subject_id: str, at: datetime
) -> KnownAt:
    """One query for the subject's journal rows recorded by `at`, each stored record decoded
    with the codec as the projector decoded it; the notices and suppressions only when they
    can matter (a grant; an identifier held); and whether an erasure's proof was purged.
    Raises ProofPurged for an instant before such an erasure."""
    rows = await conn.fetch(RECORDED_BY, subject_id, at)
    events = [
        (codec.decode(bytes(r["record_value"])), (r["log_partition"], r["log_offset"]))
        for r in rows
    ]
    granted = any(e.type == ev.CONSENT_GRANTED for e, _ in events)
    published = await notices.all_notices(conn) if granted else []
    suppressed = await suppressions(conn, list(held(recorded_by(events, at))), at)
    return known_at(events, at, published, suppressed, await purged_proof(conn, subject_id))


async def suppressions(
    conn: asyncpg.Connection | asyncpg.Pool, identifiers: Sequence[Identifier], at: datetime
) -> list[Suppression]:
    """The suppression entries of these identifiers known by `at` (SUPPRESSED)."""
    if not identifiers:
        return []
    found = await conn.fetch(
        SUPPRESSED, [t for t, _ in identifiers], [b for _, b in identifiers], at
    )
    return [
        Suppression((r["identifier_type"], bytes(r["blind_index"])), r["since"], r["known_from"])
        for r in found
    ]


async def purged_proof(
    conn: asyncpg.Connection | asyncpg.Pool, subject_id: str
) -> PurgedProof | None:
    """The erasure of a subject whose proof was purged, or None (PURGED)."""
    row = await conn.fetchrow(PURGED, subject_id)
    return PurgedProof(row["erased_at"], row["purged_at"], fact_from_row(row)) if row else None


#: The latest link event per subject for one identifier, recorded by $3, newest link first;
#: `event_type IN (...)` is spelled out so the partial index of 0010_exports.sql applies.
LINKED_AT = f"""
SELECT subject_id FROM (
    SELECT DISTINCT ON (subject_id) subject_id, event_type, recorded_at
    FROM journal
    WHERE event_type IN ('{ev.IDENTIFIER_LINKED}', '{ev.IDENTIFIER_UNLINKED}')
      AND payload->>'blind_index' = $2 AND payload->>'identifier_type' = $1
      AND recorded_at <= $3
    ORDER BY subject_id, log_partition DESC, log_offset DESC
) AS latest
WHERE event_type = '{ev.IDENTIFIER_LINKED}'
ORDER BY recorded_at DESC, subject_id
LIMIT 1
"""


async def subject_linked_at(
    conn: asyncpg.Connection | asyncpg.Pool, identifier_type: str, index: bytes, at: datetime
) -> str | None:
    """The subject the identifier belonged to at `at`, by the rule of the live lookup
    (projections/identifiers.py: the most recently recorded live link wins)."""
    blind = base64.b64encode(index).decode("ascii")
    found: str | None = await conn.fetchval(LINKED_AT, identifier_type, blind, at)
    return found
