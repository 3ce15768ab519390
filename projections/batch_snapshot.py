"""One consistent read of the projections for a batch question (purpose, channel, now), grouped
by fact pattern so the caller decides once per pattern, not once per recipient.

Design: docs/developers/design/reads.md
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, cast
from uuid import UUID

import asyncpg

from projections import identifiers, notices, offsets
from projections.notices import NO_NOTICES, Notices
from projections.state import (
    ALL,
    CHANNEL_IDENTIFIERS,
    CONSENT,
    DM_OBJECTION,
    ERASURE,
    PROCESSING_OBJECTION,
    RELATIONSHIP,
    RESTRICTION,
    SUPPRESSION,
    Fact,
    FactKey,
)
from schemas.events import CONSENT_GRANTED

FIELD_SEP: Final = "\x1f"
FACT_SEP: Final = "\x1e"
#: separates subject ids sent to and received from PostgreSQL (never in a subject id)
ID_SEP: Final = "\n"
_PAST, _FUTURE = "past", "future"
#: a grant judged by an instant before the purpose's cutoff: a material change outdated it
STALE: Final = "stale"
#: a stand-in for a stale grant's time: earlier than any cutoff
_LONG_AGO: Final = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Relevance:
    """The scopes of each kind of fact that `services.rules.decisions.decide` can read for one
    (purpose, channel) question; an empty tuple means the rules never read that kind."""

    restriction_b: tuple[str, ...]
    dm_objection_b: tuple[str, ...]
    processing_a: tuple[str, ...]
    consent_a: tuple[str, ...]
    consent_b: tuple[str, ...]
    relationship_b: tuple[str, ...]
    erasure_a: tuple[str, ...] = ()
    suppression_a: tuple[str, ...] = ()

    @classmethod
    def of(cls, purpose_id: str, basis: str, direct_marketing: bool, channel: str) -> Relevance:
        bound = basis != "legal_obligation"
        chosen = basis in ("consent", "legitimate_interest")
        related = basis in ("contract", "legitimate_interest")
        identifier = CHANNEL_IDENTIFIERS.get(channel)
        return cls(
            restriction_b=(purpose_id, ALL) if bound else (),
            dm_objection_b=(channel, ALL) if direct_marketing else (),
            processing_a=(purpose_id,) if bound else (),
            consent_a=(purpose_id, ALL) if chosen else (),
            consent_b=(channel, ALL) if chosen else (),
            relationship_b=(purpose_id, ALL) if related else (),
            erasure_a=(ALL,) if bound else (),
            suppression_a=(identifier,) if direct_marketing and identifier else (),
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
        if fact.kind == ERASURE:
            return fact.scope_a in self.erasure_a
        if fact.kind == SUPPRESSION:
            return fact.scope_a in self.suppression_a
        return False


def pattern_of(
    facts: Iterable[Fact],
    relevance: Relevance,
    now: datetime,
    notices: Notices = NO_NOTICES,
    cutoff: datetime | None = None,
) -> str:
    """A subject's fact pattern for the question, exactly as PATTERNS computes it; `cutoff` is
    `notices.cutoff(purpose, now)` when the purpose asks for re-consent, else None."""
    kept = sorted((f for f in facts if relevance.admits(f)), key=lambda f: f.position)

    def stale(f: Fact) -> str:
        grant = f.kind == CONSENT and f.event_type == CONSENT_GRANTED
        return STALE if grant and cutoff and notices.reference(f) < cutoff else ""

    return FACT_SEP.join(
        FIELD_SEP.join(
            (
                f.kind,
                f.scope_a,
                f.scope_b,
                f.event_type,
                f.outcome or "",
                "" if f.until is None else _PAST if f.until <= now else _FUTURE,
                stale(f),
            )
        )
        for f in kept
    )


def facts_of(pattern: str, now: datetime) -> dict[FactKey, Fact]:
    """Facts that `decide` treats exactly like the subject's own: the same kinds, scopes,
    types, outcomes, order, expiry relative to `now` and staleness (ids and times are
    placeholders; a stale grant has no notice version and a time before any cutoff, a current
    one the time `now`, so `decide` with the snapshot's notices judges them alike)."""
    out: dict[FactKey, Fact] = {}
    if not pattern:
        return out
    for index, code in enumerate(pattern.split(FACT_SEP)):
        kind, a, b, event_type, outcome, until, stale = code.split(FIELD_SEP)
        fact = Fact(
            kind,
            a,
            b,
            event_type,
            UUID(int=index + 1),
            (0, index),
            _LONG_AGO if stale else now,
            until=None if not until else now if until == _PAST else now + timedelta(days=1),
            outcome=outcome or None,
        )
        out[fact.key] = fact
    return out


#: $1 subject ids joined by ID_SEP (distinct), $2-$7 the Relevance scopes, $8 now, $9 the
#: purpose's notice cutoff (NULL: no grant is stale), $10-$11 the erasure and suppression
#: scopes. Subjects are grouped under the "C" collation: byte order is all grouping needs, and
#: it sorts far faster than a locale's.
PATTERNS: Final = """
WITH per_subject AS (
    SELECT f.subject_id COLLATE "C" AS subject_id,
           string_agg(
               concat_ws(E'\\x1f', f.kind, f.scope_a, f.scope_b, f.event_type,
                         coalesce(f.outcome, ''),
                         CASE WHEN f.until IS NULL THEN ''
                              WHEN f.until <= $8 THEN 'past' ELSE 'future' END,
                         CASE WHEN f.kind = 'consent' AND f.event_type = 'ConsentGranted'
                                   AND coalesce(n.effective_from, f.occurred_at) < $9
                              THEN 'stale' ELSE '' END),
               E'\\x1e' ORDER BY f.log_partition, f.log_offset) AS pattern
    FROM unnest(string_to_array($1::text, E'\\n')) AS r(subject_id)
    JOIN subject_facts f ON f.subject_id = r.subject_id
    LEFT JOIN notices n ON $9::timestamptz IS NOT NULL AND n.version = f.notice_version
    WHERE (f.kind = 'restriction' AND f.scope_b = ANY($2::text[]))
       OR (f.kind = 'dm_objection' AND f.scope_b = ANY($3::text[]))
       OR (f.kind = 'processing_objection' AND f.scope_a = ANY($4::text[]))
       OR (f.kind = 'consent' AND f.scope_a = ANY($5::text[]) AND f.scope_b = ANY($6::text[]))
       OR (f.kind = 'relationship' AND f.scope_b = ANY($7::text[]))
       OR (f.kind = 'erasure' AND f.scope_a = ANY($10::text[]))
       OR (f.kind = 'suppression' AND f.scope_a = ANY($11::text[]))
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
    #: the published notices the patterns were computed against: decide with these
    notices: Notices = NO_NOTICES


async def read_snapshot(
    pool: asyncpg.Pool,
    *,
    topic: str,
    partitions: int,
    relevance: Relevance,
    now: datetime,
    subjects: Sequence[str] = (),
    email_indexes: Sequence[bytes] = (),
    reconsent_purpose: str | None = None,
) -> Snapshot:
    """The projected positions, the e-mail lookups, the notices and the fact patterns of
    `subjects` plus the subjects the e-mails resolve to, all from one snapshot.

    `reconsent_purpose` is the purpose's id when it asks for re-consent after a material
    notice change (its grants may be stale), else None."""
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
        published = await notices.load(conn)
        cutoff = published.cutoff(reconsent_purpose, now) if reconsent_purpose else None
        groups = await _patterns(conn, wanted, relevance, now, cutoff) if wanted else []
    return Snapshot([stored.get(p, 0) for p in range(partitions)], linked, groups, published)


async def _patterns(
    conn: asyncpg.Connection,
    subjects: list[str],
    relevance: Relevance,
    now: datetime,
    cutoff: datetime | None,
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
        cutoff,
        list(r.erasure_a),
        list(r.suppression_a),
    )
    return [(row["pattern"], row["subjects"].split(ID_SEP)) for row in rows]
