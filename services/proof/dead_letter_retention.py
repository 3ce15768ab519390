"""Dead letters are kept for LEDGER_DEAD_LETTER_RETENTION_DAYS, then purged by `consent-ledger
retention`: they may hold personal data that erasure cannot reach.

Design: docs/developers/design/retention.md
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import asyncpg

#: the error text a purged outbox row keeps in place of the codec's message
PURGED_ERROR: Final = "purged after the dead-letter retention period"

#: a rejected record is due when it is old, or was purged before (a rebuild wrote it again)
DUE_REJECTED: Final = """
rejected_records r WHERE r.topic = $1 AND (r.rejected_at < $2 OR EXISTS (
    SELECT 1 FROM dead_letter_outbox o
    WHERE o.topic = r.topic AND o.log_partition = r.log_partition
      AND o.log_offset = r.log_offset AND o.purged_at IS NOT NULL))
"""
COUNT_DUE: Final = f"""
SELECT (SELECT count(*) FROM {DUE_REJECTED}) AS rejected,
       (SELECT count(*) FROM dead_letter_outbox
        WHERE topic = $1 AND queued_at < $2 AND purged_at IS NULL) AS letters
"""
PURGE_REJECTED: Final = f"DELETE FROM {DUE_REJECTED}"
PURGE_LETTERS: Final = """
UPDATE dead_letter_outbox
SET record_key = NULL, record_value = NULL, error = $3, purged_at = now(), claimed_until = NULL
WHERE topic = $1 AND queued_at < $2 AND purged_at IS NULL
"""


@dataclass(frozen=True, slots=True)
class DeadLetterPurge:
    """What one run purged (or, dry, would purge): rows of each table, and the cut-off."""

    rejected: int
    letters: int
    before: datetime


def cutoff(now: datetime, days: int) -> datetime:
    """Records rejected before this instant are due."""
    return now - timedelta(days=days)


def _count(status: str) -> int:
    return int(status.rsplit(" ", 1)[-1])


async def purge_dead_letters(
    conn: asyncpg.Connection, topic: str, before: datetime, *, dry_run: bool
) -> DeadLetterPurge:
    """Purge the dead letters of `topic` rejected before `before` (module docstring)."""
    if dry_run:
        row = await conn.fetchrow(COUNT_DUE, topic, before)
        assert row is not None
        return DeadLetterPurge(int(row["rejected"]), int(row["letters"]), before)
    async with conn.transaction():
        await conn.execute("LOCK TABLE checkpoint_state IN ROW SHARE MODE")
        rejected = _count(await conn.execute(PURGE_REJECTED, topic, before))
        letters = _count(await conn.execute(PURGE_LETTERS, topic, before, PURGED_ERROR))
    return DeadLetterPurge(rejected, letters, before)
