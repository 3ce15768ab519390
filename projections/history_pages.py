"""A subject's whole history from the journal, page by page in log order, for exports.

Pages are read by key (after the last position seen), so a history of any length streams in
bounded memory and each page is one indexed read.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from uuid import UUID

import asyncpg

PAGE_SIZE: Final = 1000


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """One journal row: the event's JSON payload (as /events shows it) and its stored bytes."""

    event_id: UUID
    event_type: str
    partition: int
    offset: int
    occurred_at: datetime
    recorded_at: datetime
    payload: dict[str, Any]
    value: bytes


PAGE = """
SELECT event_id, event_type, log_partition, log_offset, occurred_at, recorded_at,
       payload::text AS payload, record_value
FROM journal
WHERE subject_id = $1 AND (log_partition, log_offset) > ($2, $3)
ORDER BY log_partition, log_offset
LIMIT $4
"""


async def page(
    conn: asyncpg.Connection | asyncpg.Pool,
    subject_id: str,
    after: tuple[int, int] = (-1, -1),
    limit: int | None = None,
) -> list[HistoryRow]:
    rows = await conn.fetch(PAGE, subject_id, after[0], after[1], limit or PAGE_SIZE)
    return [
        HistoryRow(
            event_id=r["event_id"],
            event_type=r["event_type"],
            partition=r["log_partition"],
            offset=r["log_offset"],
            occurred_at=r["occurred_at"],
            recorded_at=r["recorded_at"],
            payload=json.loads(r["payload"]),
            value=bytes(r["record_value"]),
        )
        for r in rows
    ]


async def pages(
    conn: asyncpg.Connection | asyncpg.Pool,
    subject_id: str,
    first: list[HistoryRow] | None = None,
    size: int | None = None,
) -> AsyncIterator[list[HistoryRow]]:
    """Every page in log order; `first`, when given, is the page already read from the start
    (a route reads it before answering, so a database failure is still a 503)."""
    size = size or PAGE_SIZE
    rows = first if first is not None else await page(conn, subject_id, limit=size)
    while rows:
        yield rows
        if len(rows) < size:
            return
        last = rows[-1]
        rows = await page(conn, subject_id, (last.partition, last.offset), size)
