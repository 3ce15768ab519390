"""Dead letters are kept for LEDGER_DEAD_LETTER_RETENTION_DAYS, then purged by `consent-ledger
retention`.

A dead letter is a record of the event topic the projector refused (the codec could not read
it, or its MAC was missing or wrong): something a foreign or broken producer wrote, which may
hold personal data in any form and under no subject's key, so erasure cannot reach it. After
the retention period:

- its `rejected_records` row is deleted. `restore-log` then finds no record at that offset and
  writes a placeholder, as for an erased subject's purged journal entry: the records after it
  keep their offsets, and the partition's checkpoint digest starts again. A rebuild replays
  the log, which still holds the record, and so writes its row again: the next run deletes it
  again, whatever its age, because its outbox row says it was purged;
- its `dead_letter_outbox` row keeps the position, when it was queued and where it was
  published, but loses the record's key, value and error text (`purged_at` is set). The count
  of dead letters ever seen (`/readyz`, `ledger_dead_letters_total`) comes from these rows, so
  it never goes down. A letter purged before it was published is never published;
- on the dead-letter topic, the broker deletes it once it is older than the topic's
  `retention.ms` (set from the same setting when the ledger creates the topic).

The purge runs in one transaction that takes `checkpoint_state` in ROW SHARE mode: a
`restore-log` (which locks that table EXCLUSIVE while it reads the stored records) waits for
it, or it for the restore, and projector batches are not held up.
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
