"""Dead letters are kept for LEDGER_DEAD_LETTER_RETENTION_DAYS, then purged by `consent-ledger
retention`: they may hold personal data that erasure cannot reach.

Design: docs/developers/design/retention.md
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import asyncpg

from projections import dead_letters, log_digest

#: the error text a purged outbox row keeps in place of the codec's message
PURGED_ERROR: Final = "purged after the dead-letter retention period"


@dataclass(frozen=True, slots=True)
class DeadLetterPurge:
    """What one run purged (or, dry, would purge): rows of each table, and the cut-off."""

    rejected: int
    letters: int
    before: datetime


def cutoff(now: datetime, days: int) -> datetime:
    """Records rejected before this instant are due."""
    return now - timedelta(days=days)


async def purge_dead_letters(
    conn: asyncpg.Connection, topic: str, before: datetime, *, dry_run: bool
) -> DeadLetterPurge:
    """Purge the dead letters of `topic` rejected before `before` (module docstring)."""
    if dry_run:
        return DeadLetterPurge(*await dead_letters.count_due(conn, topic, before), before)
    async with conn.transaction():
        await log_digest.lock_out_restores(conn)
        rejected, letters = await dead_letters.purge_due(conn, topic, before, PURGED_ERROR)
    return DeadLetterPurge(rejected, letters, before)
