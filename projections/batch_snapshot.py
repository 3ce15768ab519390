"""One consistent read of the projections for a batch question (purpose, channel, now).

A batch check must not cost a round trip per recipient, nor a `decide()` per recipient: for a
fixed question, a subject's answer depends only on its *fact pattern*, the facts that can
matter to the question (`Relevance`) in log order, each reduced to its kind, scope, event
type, outcome and whether its `until` has passed. A mailing list has a handful of distinct
patterns, so PostgreSQL computes each recipient's pattern and groups the recipients by it,
and the caller decides once per pattern (services/batch_decisions.py).

`pattern_of` is the same encoding in Python: the tests hold the SQL to it. Within a pattern
no two facts share a log position: one event sets several facts only for several purposes
(restrictions, relationships), and the relevance filter keeps at most one of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, cast
from uuid import UUID

import asyncpg

from projections import identifiers, offsets
from projections.state import (
    ALL,
    CONSENT,
    DM_OBJECTION,
    PROCESSING_OBJECTION,
    RELATIONSHIP,
    RESTRICTION,
    Fact,
    FactKey,
)

FIELD_SEP: Final = "\x1f"
FACT_SEP: Final = "\x1e"
#: separates subject ids sent to and received from PostgreSQL (never in a subject id)
ID_SEP: Final = "\n"
_PAST, _FUTURE = "past", "future"


@dataclass(frozen=True, slots=True)
class Relevance:
    """The scopes of each kind of fact that `services.decisions.decide` can read for one
    (purpose, channel) question; an empty tuple means the rules never read that kind."""

    restriction_b: tuple[str, ...]
    dm_objection_b: tuple[str, ...]
    processing_a: tuple[str, ...]
    consent_a: tuple[str, ...]
    consent_b: tuple[str, ...]
    relationship_b: tuple[str, ...]

    @classmethod
    def of(cls, purpose_id: str, basis: str, direct_marketing: bool, channel: str) -> Relevance:
        bound = basis != "legal_obligation"
        chosen = basis in ("consent", "legitimate_interest")
        related = basis in ("contract", "legitimate_interest")
        return cls(
            restriction_b=(purpose_id, ALL) if bound else (),
            dm_objection_b=(channel, ALL) if direct_marketing else (),
            processing_a=(purpose_id,) if bound else (),
            consent_a=(purpose_id, ALL) if chosen else (),
            consent_b=(channel, ALL) if chosen else (),
            relationship_b=(purpose_id, ALL) if related else (),
        )

    def admits(self, fact: Fact) -> bool:
        """The filter of PATTERNS, in Python."""
        if fact.kind == RESTRICTION:
            return fact.scope_b in self.restriction_b
        if fact.kind == DM_OBJECTION:
            return fact.scope_b in self.dm_objection_b
        if fact.kind == PROCESSING_OBJECTION:
            return fact.scope_a in self.processing_a
        if fact.kind == CONSENT:
            return fact.scope_a in self.consent_a and fact.scope_b in self.consent_b
        if fact.kind == RELATIONSHIP:
            return fact.scope_b in self.relationship_b
        return False


def pattern_of(facts: Iterable[Fact], relevance: Relevance, now: datetime) -> str:
    """A subject's fact pattern for the question, exactly as PATTERNS computes it."""
    kept = sorted((f for f in facts if relevance.admits(f)), key=lambda f: f.position)
    return FACT_SEP.join(
        FIELD_SEP.join(
            (
                f.kind,
                f.scope_a,
                f.scope_b,
                f.event_type,
                f.outcome or "",
                "" if f.until is None else _PAST if f.until <= now else _FUTURE,
            )
        )
        for f in kept
    )


def facts_of(pattern: str, now: datetime) -> dict[FactKey, Fact]:
    """Facts that `decide` treats exactly like the subject's own: the same kinds, scopes,
    types, outcomes, order and expiry relative to `now` (ids and times are placeholders)."""
    out: dict[FactKey, Fact] = {}
    if not pattern:
        return out
    for index, code in enumerate(pattern.split(FACT_SEP)):
        kind, a, b, event_type, outcome, until = code.split(FIELD_SEP)
        fact = Fact(
            kind,
            a,
            b,
            event_type,
            UUID(int=index + 1),
            (0, index),
            now,
            until=None if not until else now if until == _PAST else now + timedelta(days=1),
            outcome=outcome or None,
        )
        out[fact.key] = fact
    return out


#: $1 subject ids joined by ID_SEP (distinct), $2-$7 the Relevance scopes, $8 now. Subjects
#: are grouped under the "C" collation: byte order is all grouping needs, and it sorts far
#: faster than a locale's.
PATTERNS: Final = """
WITH per_subject AS (
    SELECT f.subject_id COLLATE "C" AS subject_id,
           string_agg(
               concat_ws(E'\\x1f', f.kind, f.scope_a, f.scope_b, f.event_type,
                         coalesce(f.outcome, ''),
                         CASE WHEN f.until IS NULL THEN ''
                              WHEN f.until <= $8 THEN 'past' ELSE 'future' END),
               E'\\x1e' ORDER BY f.log_partition, f.log_offset) AS pattern
    FROM unnest(string_to_array($1::text, E'\\n')) AS r(subject_id)
    JOIN subject_facts f ON f.subject_id = r.subject_id
    WHERE (f.kind = 'restriction' AND f.scope_b = ANY($2::text[]))
       OR (f.kind = 'dm_objection' AND f.scope_b = ANY($3::text[]))
       OR (f.kind = 'processing_objection' AND f.scope_a = ANY($4::text[]))
       OR (f.kind = 'consent' AND f.scope_a = ANY($5::text[]) AND f.scope_b = ANY($6::text[]))
       OR (f.kind = 'relationship' AND f.scope_b = ANY($7::text[]))
    GROUP BY 1
)
SELECT pattern, string_agg(subject_id, E'\\n') AS subjects FROM per_subject GROUP BY pattern
"""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What one REPEATABLE READ transaction saw."""

    #: next offset of partitions 0..n-1 that the projection had applied
    positions: list[int]
    #: blind index -> subject id, for the indexes asked about that are linked
    linked: dict[bytes, str]
    #: (pattern, subject ids with that pattern); subjects with no relevant fact are in none
    groups: list[tuple[str, list[str]]]


async def read_snapshot(
    pool: asyncpg.Pool,
    *,
    topic: str,
    partitions: int,
    relevance: Relevance,
    now: datetime,
    subjects: Sequence[str] = (),
    email_indexes: Sequence[bytes] = (),
) -> Snapshot:
    """The projected positions, the e-mail lookups and the fact patterns of `subjects` plus
    the subjects the e-mails resolve to, all from one snapshot."""
    async with (
        pool.acquire() as proxy,
        proxy.transaction(isolation="repeatable_read", readonly=True),
    ):
        conn = cast(asyncpg.Connection, proxy)  # the pool's proxy is a connection to the stubs
        # sorting and grouping 100k rows overflows the default 4 MB and spills to disk
        await conn.execute("SET LOCAL work_mem = '64MB'")
        stored = await offsets.load(conn, topic)
        linked = await identifiers.lookup(conn, "email", email_indexes) if email_indexes else {}
        wanted = list(dict.fromkeys([*subjects, *linked.values()]))
        groups = await _patterns(conn, wanted, relevance, now) if wanted else []
    return Snapshot([stored.get(p, 0) for p in range(partitions)], linked, groups)


async def _patterns(
    conn: asyncpg.Connection, subjects: list[str], relevance: Relevance, now: datetime
) -> list[tuple[str, list[str]]]:
    joined = ID_SEP.join(subjects)
    if joined.count(ID_SEP) != len(subjects) - 1:
        raise ValueError("a subject id contains a line break")
    r = relevance
    rows = await conn.fetch(
        PATTERNS,
        joined,
        list(r.restriction_b),
        list(r.dm_objection_b),
        list(r.processing_a),
        list(r.consent_a),
        list(r.consent_b),
        list(r.relationship_b),
        now,
    )
    return [(row["pattern"], row["subjects"].split(ID_SEP)) for row in rows]
