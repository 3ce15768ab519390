"""The state projection: per subject and scope, the latest fact (see projections/state.py).

Consents, objections, restrictions and relationships share one table with a `kind` column, so
a decision is one indexed read of a subject's rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

import asyncpg

from projections.state import ALL, CONSENT, DM_OBJECTION, Fact, FactKey

SubjectFact = tuple[str, Fact]

COLUMNS = (
    "subject_id",
    "kind",
    "scope_a",
    "scope_b",
    "event_type",
    "event_id",
    "log_partition",
    "log_offset",
    "occurred_at",
    "until",
    "outcome",
    "notice_version",
)


def row_of(subject_id: str, fact: Fact) -> tuple[object, ...]:
    """A state row in the order of COLUMNS."""
    return (
        subject_id,
        fact.kind,
        fact.scope_a,
        fact.scope_b,
        fact.event_type,
        fact.event_id,
        fact.position[0],
        fact.position[1],
        fact.occurred_at,
        fact.until,
        fact.outcome,
        fact.notice_version,
    )


#: the batch's rows are copied here first (emptied at commit), then merged in one statement:
#: a COPY costs the client far less than twelve arrays encoded an element at a time
STAGE = """
CREATE TEMP TABLE IF NOT EXISTS subject_facts_batch (LIKE subject_facts) ON COMMIT DELETE ROWS
"""

MERGE = f"""
INSERT INTO subject_facts AS f ({", ".join(COLUMNS)})
SELECT {", ".join(COLUMNS)} FROM subject_facts_batch
ON CONFLICT (subject_id, kind, scope_a, scope_b) DO UPDATE SET
    event_type = EXCLUDED.event_type, event_id = EXCLUDED.event_id,
    log_partition = EXCLUDED.log_partition, log_offset = EXCLUDED.log_offset,
    occurred_at = EXCLUDED.occurred_at, until = EXCLUDED.until, outcome = EXCLUDED.outcome,
    notice_version = EXCLUDED.notice_version
WHERE (f.log_partition, f.log_offset) < (EXCLUDED.log_partition, EXCLUDED.log_offset)
"""


def latest_per_subject(facts: Iterable[SubjectFact]) -> list[SubjectFact]:
    """One fact per (subject, key), the latest: a batch may touch a key several times."""
    out: dict[tuple[str, FactKey], SubjectFact] = {}
    for subject_id, fact in facts:
        held = out.get((subject_id, fact.key))
        if held is None or fact.position > held[1].position:
            out[(subject_id, fact.key)] = (subject_id, fact)
    return list(out.values())


async def upsert(conn: asyncpg.Connection, facts: Iterable[SubjectFact]) -> None:
    """Keep each fact unless the table holds a later one for its key. The staging table
    empties at each commit, so outside a transaction the upsert opens its own."""
    rows = latest_per_subject(facts)
    if not rows:
        return
    if not conn.is_in_transaction():
        async with conn.transaction():
            await _stage_and_merge(conn, rows)
        return
    await _stage_and_merge(conn, rows)


async def _stage_and_merge(conn: asyncpg.Connection, rows: list[SubjectFact]) -> None:
    await conn.execute(STAGE)
    await conn.copy_records_to_table(
        "subject_facts_batch",
        records=[row_of(s, f) for s, f in rows],
        columns=COLUMNS,
    )
    await conn.execute(MERGE)


def fact_from_row(row: asyncpg.Record) -> Fact:
    return Fact(
        kind=row["kind"],
        scope_a=row["scope_a"],
        scope_b=row["scope_b"],
        event_type=row["event_type"],
        event_id=row["event_id"],
        position=(row["log_partition"], row["log_offset"]),
        occurred_at=row["occurred_at"],
        until=row["until"],
        outcome=row["outcome"],
        # queries that never decide on notices may leave the column out
        notice_version=row.get("notice_version"),
    )


#: Subjects' facts, the projected position of each one's partition and the number of notices
#: applied, in one statement and so from one snapshot (services/reads/notice_cache.py); $1 subject
#: ids, $2 their partitions, $3 the topic. Every subject yields at least one row, so a subject
#: with no facts still gets its position.
LOAD_MANY = """
SELECT s.subject_id AS asked, o.next_offset AS position,
       (SELECT count(*) FROM notices) AS notices_applied,
       f.kind, f.scope_a, f.scope_b, f.event_type, f.event_id,
       f.log_partition, f.log_offset, f.occurred_at, f.until, f.outcome, f.notice_version
FROM unnest($1::text[], $2::int[]) AS s(subject_id, log_partition)
LEFT JOIN projector_offsets o ON o.topic = $3 AND o.log_partition = s.log_partition
LEFT JOIN subject_facts f ON f.subject_id = s.subject_id
"""

#: a subject's facts, its partition's projected position and the notices applied, as read
Loaded = tuple[dict[FactKey, Fact], int, int]


async def load_many(
    conn: asyncpg.Connection | asyncpg.Pool, topic: str, asked: Sequence[tuple[str, int]]
) -> dict[tuple[str, int], Loaded]:
    """`load_counted` for many (subject id, partition) pairs, from one snapshot."""
    rows = await conn.fetch(LOAD_MANY, [s for s, _ in asked], [p for _, p in asked], topic)
    partition_of = dict(asked)
    out: dict[tuple[str, int], Loaded] = {}
    for row in rows:
        subject_id = row["asked"]
        key = (subject_id, partition_of[subject_id])
        loaded = out.get(key)
        if loaded is None:
            loaded = out[key] = ({}, row["position"] or 0, row["notices_applied"])
        if row["kind"] is not None:
            fact = fact_from_row(row)
            loaded[0][fact.key] = fact
    return out


async def load(
    conn: asyncpg.Connection | asyncpg.Pool, subject_id: str, topic: str, partition: int
) -> tuple[dict[FactKey, Fact], int]:
    """A subject's state and the projected position of its partition, read together."""
    facts, position, _ = await load_counted(conn, subject_id, topic, partition)
    return facts, position


async def load_counted(
    conn: asyncpg.Connection | asyncpg.Pool, subject_id: str, topic: str, partition: int
) -> tuple[dict[FactKey, Fact], int, int]:
    """As `load`, plus how many notices the same snapshot had applied."""
    return (await load_many(conn, topic, [(subject_id, partition)]))[(subject_id, partition)]


#: the latest time of a subject's consent facts for the purpose and channel (or every one) and
#: of its direct-marketing objections on the channel (or every one), per subject and kind
LATEST_COVERING = """
SELECT subject_id, kind, max(occurred_at) AS latest
FROM subject_facts
WHERE subject_id = ANY($1::text[])
  AND ((kind = $4 AND scope_a IN ($2, $5) AND scope_b IN ($3, $5))
    OR (kind = $6 AND scope_a = $5 AND scope_b IN ($3, $5)))
GROUP BY subject_id, kind
"""


async def latest_covering(
    conn: asyncpg.Connection | asyncpg.Pool, subject_ids: Iterable[str], purpose: str, channel: str
) -> dict[tuple[str, str], datetime]:
    """(subject, kind) -> when its latest consent or direct-marketing objection fact covering
    the purpose and channel occurred: a decision older than that would be overruled."""
    rows = await conn.fetch(
        LATEST_COVERING, list(subject_ids), purpose, channel, CONSENT, ALL, DM_OBJECTION
    )
    return {(r["subject_id"], r["kind"]): r["latest"] for r in rows}


async def facts_of(
    conn: asyncpg.Connection | asyncpg.Pool, subject_ids: Sequence[str]
) -> dict[str, dict[FactKey, Fact]]:
    """Each subject's facts (an empty state for a subject with none)."""
    states: dict[str, dict[FactKey, Fact]] = {s: {} for s in subject_ids}
    if not subject_ids:
        return states
    rows = await conn.fetch(
        "SELECT subject_id, kind, scope_a, scope_b, event_type, event_id, log_partition,"
        " log_offset, occurred_at, until, outcome, notice_version"
        " FROM subject_facts WHERE subject_id = ANY($1::text[])",
        list(subject_ids),
    )
    for row in rows:
        fact = fact_from_row(row)
        states[row["subject_id"]][fact.key] = fact
    return states
