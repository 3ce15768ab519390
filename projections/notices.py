"""Privacy notices: the `notices` projection (the rule of when a material change outdates a
consent, and the values it reads, are pure: projections/outdating.py).
The same concept as services/api/notices.py, on the projections' side.

Design: docs/developers/design/notices.md
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Final

import asyncpg

from projections.outdating import Notice, Notices, notice_from_event
from projections.state import Position
from schemas.events import Event

INSERT = """
INSERT INTO notices (version, effective_from, text_sha256, url, material, purposes, language,
                     event_id, log_partition, log_offset, published_at)
SELECT v, ef, d, u, m, coalesce(string_to_array(nullif(p, ''), E'\\x1f'), '{}'),
       l, e, lp, lo, pa
FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::bool[], $6::text[],
            $7::text[], $8::uuid[], $9::int[], $10::bigint[], $11::timestamptz[])
     AS x(v, ef, d, u, m, p, l, e, lp, lo, pa)
ORDER BY lp, lo
ON CONFLICT (version) DO NOTHING
"""


async def insert(conn: asyncpg.Connection, notices: Sequence[Notice]) -> None:
    """Keep the first publication of each version (in log order); later ones change nothing."""
    if not notices:
        return
    first: dict[str, Notice] = {}
    for n in sorted(notices, key=lambda n: n.position):
        first.setdefault(n.version, n)
    rows = list(first.values())
    await conn.execute(
        INSERT,
        [n.version for n in rows],
        [n.effective_from for n in rows],
        [n.text_sha256 for n in rows],
        [n.url for n in rows],
        [n.material for n in rows],
        ["\x1f".join(n.purposes) for n in rows],
        [n.language for n in rows],
        [n.event_id for n in rows],
        [n.position[0] for n in rows],
        [n.position[1] for n in rows],
        [n.published_at for n in rows],
    )


def _from_row(row: asyncpg.Record) -> Notice:
    return Notice(
        version=row["version"],
        effective_from=row["effective_from"],
        text_sha256=row["text_sha256"],
        url=row["url"],
        material=row["material"],
        purposes=tuple(row["purposes"]),
        language=row["language"],
        event_id=row["event_id"],
        published_at=row["published_at"],
        position=(row["log_partition"], row["log_offset"]),
    )


SELECT: Final = """
SELECT version, effective_from, text_sha256, url, material, purposes, language, event_id,
       log_partition, log_offset, published_at
FROM notices
"""


async def all_notices(conn: asyncpg.Connection | asyncpg.Pool) -> list[Notice]:
    """Every published version, by effective_from."""
    rows = await conn.fetch(SELECT + " ORDER BY effective_from, version")
    return [_from_row(r) for r in rows]


async def load(conn: asyncpg.Connection | asyncpg.Pool) -> Notices:
    return Notices.of(await all_notices(conn))


async def get(conn: asyncpg.Connection | asyncpg.Pool, version: str) -> Notice | None:
    row = await conn.fetchrow(SELECT + " WHERE version = $1", version)
    return _from_row(row) if row is not None else None


#: Subjects holding a grant for one of `$1` (every purpose when NULL): a material notice that
#: is already in effect changes their decisions, so the state feed must publish them again.
GRANTEES = """
SELECT DISTINCT subject_id, log_partition, log_offset FROM subject_facts
WHERE kind = 'consent' AND event_type = 'ConsentGranted'
  AND ($1::text[] IS NULL OR scope_a = ANY($1::text[]))
"""


async def grantees(
    conn: asyncpg.Connection, purposes: Sequence[str] | None
) -> list[tuple[str, Position]]:
    rows = await conn.fetch(GRANTEES, list(purposes) if purposes is not None else None)
    return [(r["subject_id"], (r["log_partition"], r["log_offset"])) for r in rows]


#: Subjects after the cursor holding a grant for the purpose judged by an instant before the
#: cutoff (the grant's notice's effective_from, else its own time), in subject order.
GRANTED_BEFORE: Final = """
SELECT f.subject_id FROM subject_facts f
LEFT JOIN notices n ON n.version = f.notice_version
WHERE f.kind = 'consent' AND f.event_type = 'ConsentGranted' AND f.scope_a = $1
  AND coalesce(n.effective_from, f.occurred_at) < $2 AND f.subject_id > $3
GROUP BY f.subject_id
ORDER BY f.subject_id
LIMIT $4
"""


async def granted_before(
    conn: asyncpg.Connection | asyncpg.Pool, purpose: str, cutoff: datetime, after: str, limit: int
) -> list[str]:
    """Up to `limit` subjects after `after` whose grant for the purpose predates `cutoff`:
    the candidates for asking again after a material notice (GRANTED_BEFORE)."""
    rows = await conn.fetch(GRANTED_BEFORE, purpose, cutoff, after, limit)
    return [r["subject_id"] for r in rows]


async def apply(
    conn: asyncpg.Connection, events: Iterable[tuple[Event, Position]]
) -> list[tuple[str, Position]]:
    """Project the NoticePublished events among `events` (in the batch's transaction).

    Returns the subjects whose published state a material notice changes, for the state feed:
    every holder of a grant for a purpose it covers, whether it is in effect already (their
    decisions change now) or takes effect later (their entries' `until` changes)."""
    published = [n for e, pos in events if (n := notice_from_event(e, pos)) is not None]
    if not published:
        return []
    await insert(conn, published)
    touched: list[tuple[str, Position]] = []
    for notice in published:
        if notice.material:
            touched += await grantees(conn, notice.purposes or None)
    return touched
