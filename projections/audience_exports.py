"""SQL of the audience export log: one row per pull of GET /v1/audiences, written before its
first row leaves and completed (or marked cut) when the stream ends.

The route: services/api/audiences.py, which logs through services/api/audience_exports.py.
Design: docs/developers/design/audiences.md
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import asyncpg

COMPLETED: Final = "completed"
CUT: Final = "cut"

INSERT: Final = """
INSERT INTO audience_exports (export_id, key_id, key_name, purpose, channel, format,
    include_identifiers, spreadsheet_safe, campaign_id, check_id, snapshot_token, started_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
"""

#: only a started row ends, once
END: Final = """
UPDATE audience_exports SET ended_at = $2, row_count = $3, outcome = $4, cut_reason = $5
WHERE export_id = $1 AND outcome = 'started'
"""


@dataclass(frozen=True, slots=True)
class ExportStart:
    export_id: uuid.UUID
    key_id: str
    key_name: str
    purpose: str
    channel: str
    format: str
    include_identifiers: bool
    spreadsheet_safe: bool
    campaign_id: str | None
    check_id: uuid.UUID | None
    snapshot_token: str
    started_at: datetime


async def start(pool: asyncpg.Pool, e: ExportStart) -> None:
    await pool.execute(
        INSERT,
        e.export_id,
        e.key_id,
        e.key_name,
        e.purpose,
        e.channel,
        e.format,
        e.include_identifiers,
        e.spreadsheet_safe,
        e.campaign_id,
        e.check_id,
        e.snapshot_token,
        e.started_at,
    )


async def end(
    pool: asyncpg.Pool,
    export_id: uuid.UUID,
    *,
    ended_at: datetime,
    rows: int,
    cut_reason: str | None,
) -> None:
    """Completed when `cut_reason` is None, else cut for that reason."""
    outcome = COMPLETED if cut_reason is None else CUT
    await pool.execute(END, export_id, ended_at, rows, outcome, cut_reason)
