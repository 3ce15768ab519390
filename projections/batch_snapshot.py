"""One consistent read of the projections for a batch question (purpose, channel, now), grouped
by fact pattern so the caller decides once per pattern, not once per recipient.

Design: docs/developers/design/reads.md
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, cast

import asyncpg

from projections import identifiers, notices, offsets
from projections.fact_patterns import ID_SEP, Relevance
from projections.outdating import NO_NOTICES, Notices

#: a subject's fact pattern: its relevant facts in log order ($8 now, $9 the notice cutoff);
#: services/api/audiences.py aggregates the same expression over every subject
PATTERN_OF_FACTS: Final = """
string_agg(
    concat_ws(E'\\x1f', f.kind, f.scope_a, f.scope_b, f.event_type,
              coalesce(f.outcome, ''),
              CASE WHEN f.until IS NULL THEN ''
                   WHEN f.until <= $8 THEN 'past' ELSE 'future' END,
              CASE WHEN f.kind = 'consent' AND f.event_type = 'ConsentGranted'
                        AND coalesce(n.effective_from, f.occurred_at) < $9
                   THEN 'stale' ELSE '' END),
    E'\\x1e' ORDER BY f.log_partition, f.log_offset)"""
#: the facts `decide` can read for the question ($2-$7, $10-$11: the Relevance scopes)
RELEVANT_FACT: Final = """
   (f.kind = 'restriction' AND f.scope_b = ANY($2::text[]))
OR (f.kind = 'dm_objection' AND f.scope_b = ANY($3::text[]))
OR (f.kind = 'processing_objection' AND f.scope_a = ANY($4::text[]))
OR (f.kind IN ('consent', 'consent_request')
    AND f.scope_a = ANY($5::text[]) AND f.scope_b = ANY($6::text[]))
OR (f.kind = 'relationship' AND f.scope_b = ANY($7::text[]))
OR (f.kind = 'erasure' AND f.scope_a = ANY($10::text[]))
OR (f.kind = 'suppression' AND f.scope_a = ANY($11::text[]))"""
#: $1 subject ids joined by ID_SEP (distinct), $2-$7 the Relevance scopes, $8 now, $9 the
#: purpose's notice cutoff (NULL: no grant is stale), $10-$11 the erasure and suppression
#: scopes. Subjects are grouped under the "C" collation: byte order is all grouping needs, and
#: it sorts far faster than a locale's.
PATTERNS: Final = f"""
WITH per_subject AS (
    SELECT f.subject_id COLLATE "C" AS subject_id, {PATTERN_OF_FACTS} AS pattern
    FROM unnest(string_to_array($1::text, E'\\n')) AS r(subject_id)
    JOIN subject_facts f ON f.subject_id = r.subject_id
    LEFT JOIN notices n ON $9::timestamptz IS NOT NULL AND n.version = f.notice_version
    WHERE {RELEVANT_FACT}
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
