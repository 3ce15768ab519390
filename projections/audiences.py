"""SQL of a campaign's audience: every subject's fact pattern for one question, streamed in
subject order, and the sealed addresses of the subjects a stream lets out.

The pattern is batch_snapshot's own expression (PATTERN_OF_FACTS over RELEVANT_FACT), so an
audience and a batch check decide alike. The route: services/api/audiences.py.

Design: docs/developers/design/audiences.md
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence
from datetime import datetime
from typing import Final, cast

import asyncpg

from projections.batch_snapshot import PATTERN_OF_FACTS, RELEVANT_FACT
from projections.fact_patterns import Relevance

#: $1 the channel's identifier type ('' for a channel without one), $2-$11 as in
#: batch_snapshot.PATTERNS. Everyone the ledger has a fact of, plus everyone known only by a
#: linked address of the channel (their pattern is empty), in byte order of the subject id: the
#: order a check's digest sorts in, so the digest is taken as the rows pass.
EVERYONE: Final = f"""
SELECT subject_id, coalesce(pattern, '') AS pattern FROM (
    SELECT f.subject_id COLLATE "C" AS subject_id,
           {PATTERN_OF_FACTS} FILTER (WHERE {RELEVANT_FACT}) AS pattern
    FROM subject_facts f
    LEFT JOIN notices n ON $9::timestamptz IS NOT NULL AND n.version = f.notice_version
    GROUP BY 1
    UNION ALL
    SELECT DISTINCT i.subject_id COLLATE "C", NULL
    FROM identifiers i
    WHERE i.identifier_type = $1 AND i.linked
      AND NOT EXISTS (SELECT 1 FROM subject_facts f WHERE f.subject_id = i.subject_id)
) AS everyone
ORDER BY 1
"""

#: run first in the audience's transaction: EVERYONE sorts and groups every subject's facts,
#: in memory rather than in temporary files (the benchmark's COPY baseline sets it too)
WORK_MEM: Final = "SET LOCAL work_mem = '64MB'"

#: the linked addresses of type $1 of the subjects $2 that each subject holds now, each with its
#: subject's wrapped data key (an erased subject has neither); oldest link first. An address
#: linked later to another subject is that subject's now (the holder identifiers.LOOKUP answers:
#: the most recent link, ties to the smallest subject id), so the earlier one is not sent to
NOT_HELD_BY_ANOTHER: Final = """
NOT EXISTS (
    SELECT 1 FROM identifiers n
    WHERE n.identifier_type = i.identifier_type AND n.blind_index = i.blind_index AND n.linked
      AND (n.recorded_at > i.recorded_at
           OR (n.recorded_at = i.recorded_at AND n.subject_id < i.subject_id))
)"""
SEALED_ADDRESSES: Final = f"""
SELECT i.subject_id, i.ciphertext, k.master_key_id, k.wrapped_key
FROM identifiers i JOIN subject_keys k ON k.subject_id = i.subject_id
WHERE i.identifier_type = $1 AND i.linked AND i.subject_id = ANY($2::text[])
  AND i.ciphertext IS NOT NULL AND k.wrapped_key IS NOT NULL
  AND {NOT_HELD_BY_ANOTHER}
ORDER BY i.subject_id, i.recorded_at, i.blind_index
"""

#: the current holder of each blind index $2 of type $1 (the most recent link, as
#: identifiers.lookup answers), with its sealed address and wrapped data key
SEALED_HOLDERS: Final = """
SELECT DISTINCT ON (i.blind_index) i.blind_index, i.subject_id, i.ciphertext,
       k.master_key_id, k.wrapped_key
FROM identifiers i JOIN subject_keys k ON k.subject_id = i.subject_id
WHERE i.identifier_type = $1 AND i.linked AND i.blind_index = ANY($2::bytea[])
  AND i.ciphertext IS NOT NULL AND k.wrapped_key IS NOT NULL
ORDER BY i.blind_index, i.recorded_at DESC, i.subject_id
"""


def everyone_args(
    *, identifier_type: str, relevance: Relevance, now: datetime, cutoff: datetime | None
) -> tuple[object, ...]:
    """EVERYONE's arguments ($1-$11); the benchmark's COPY baseline runs the same query."""
    r = relevance
    return (
        identifier_type,
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


async def everyone(
    conn: asyncpg.Connection,
    *,
    identifier_type: str,
    relevance: Relevance,
    now: datetime,
    cutoff: datetime | None,
    chunk: int,
    prefetch: bool = False,
) -> AsyncGenerator[list[tuple[str, str]], None]:
    """(subject id, pattern) of every subject, `chunk` rows at a time, through a server-side
    cursor: memory holds one chunk (two with `prefetch`), whatever the audience's size. Runs
    in the caller's transaction (REPEATABLE READ, so every chunk comes from one snapshot).

    With `prefetch`, PostgreSQL reads the next chunk while the caller works on this one; only
    for a caller that sends no other query on `conn` in between, and closes this iterator
    (contextlib.aclosing) before it ends the transaction."""
    args = everyone_args(
        identifier_type=identifier_type, relevance=relevance, now=now, cutoff=cutoff
    )
    cursor = await conn.cursor(EVERYONE, *args)
    if not prefetch:
        while rows := await cursor.fetch(chunk):
            yield _pairs(rows)
        return
    ahead = asyncio.ensure_future(cursor.fetch(chunk))
    try:
        while rows := await ahead:
            ahead = asyncio.ensure_future(cursor.fetch(chunk))
            yield _pairs(rows)
    finally:
        # closed early (the client left): the read in flight ends before the caller rolls the
        # transaction back, since a connection runs one operation at a time
        if not ahead.done():
            try:
                await asyncio.wait([ahead])
            finally:
                # cancelled while waiting: cancel the read too, and the pool's release waits
                # for that before it rolls back (a no-op once the read is done)
                ahead.cancel()
        ahead.add_done_callback(_retrieved)


def _pairs(rows: list[asyncpg.Record]) -> list[tuple[str, str]]:
    # a Record unpacks like the (subject id, pattern) tuple it holds: no copy per row
    return cast(list[tuple[str, str]], rows)


def _retrieved(done: asyncio.Future[list[asyncpg.Record]]) -> None:
    """Take an unused read's outcome, so an error in it is not reported as never seen."""
    if not done.cancelled():
        done.exception()


async def sealed_addresses(
    conn: asyncpg.Connection, identifier_type: str, subject_ids: Sequence[str]
) -> list[asyncpg.Record]:
    """SEALED_ADDRESSES of these subjects."""
    return await conn.fetch(SEALED_ADDRESSES, identifier_type, list(subject_ids))


async def sealed_holders(
    conn: asyncpg.Connection | asyncpg.Pool, identifier_type: str, indexes: Sequence[bytes]
) -> list[asyncpg.Record]:
    """SEALED_HOLDERS of these blind indexes."""
    return await conn.fetch(SEALED_HOLDERS, identifier_type, list(indexes))


def statement_timeout(seconds: int) -> str:
    """SET LOCAL statement_timeout for a stream's transaction: its cursor's first FETCH sorts
    the whole audience, so its reads are bounded by the stream's own deadline instead of the
    API's per-statement one (LEDGER_DB_STATEMENT_TIMEOUT_MS, meant for point reads)."""
    return f"SET LOCAL statement_timeout = '{int(seconds)}s'"
