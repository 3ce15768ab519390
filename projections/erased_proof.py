"""An erased subject's proof: the journal entries and facts kept after the erasure, and their
purge once the retention period of their purposes ends (services/proof/retention.py decides
when). What stays is the erasure record, the erasure fact, the key tombstone and the address
suppression entries (projections/erasure.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final

import asyncpg

from projections import log_digest

#: erased subjects whose journal entries are still kept, oldest erasure first
KEPT: Final = """
SELECT e.subject_id, e.erased_at FROM erasures e
WHERE EXISTS (SELECT 1 FROM journal j WHERE j.subject_id = e.subject_id)
ORDER BY e.erased_at, e.subject_id
"""
HEAD: Final = """
SELECT chain_hash FROM journal WHERE subject_id = $1
ORDER BY log_partition DESC, log_offset DESC LIMIT 1
"""
#: what goes with the journal entries (all but the erasure fact)
PURGE: Final = (
    "DELETE FROM duplicate_records WHERE event_id IN"
    " (SELECT event_id FROM journal WHERE subject_id = $1)",
    "DELETE FROM subject_facts WHERE subject_id = $1 AND kind <> 'erasure'",
    "DELETE FROM rights_requests WHERE subject_id = $1",
)
FORGET_JOURNAL: Final = "DELETE FROM journal WHERE subject_id = $1"
RECORD: Final = """
UPDATE erasures SET purged_at = now(), purged_events = coalesce(purged_events, 0) + $2,
                    chain_head = $3
WHERE subject_id = $1
"""


async def kept(conn: asyncpg.Connection) -> list[tuple[str, datetime]]:
    """(subject, erased at) of the erased subjects whose proof is still kept."""
    return [(r["subject_id"], r["erased_at"]) for r in await conn.fetch(KEPT)]


async def purge(
    conn: asyncpg.Connection, topic: str, subject_id: str, partitions: Sequence[int]
) -> int:
    """Delete the subject's proof and record the purge with the chain head it ends at, in the
    caller's transaction; returns how many journal entries went. The subject's partitions are
    locked first, as each batch does, so no batch chains onto an entry while it is deleted."""
    await log_digest.lock_partitions(conn, topic, partitions)
    # read again under the lock: a batch may have added an entry meanwhile
    head = await conn.fetchval(HEAD, subject_id)
    for statement in PURGE:
        await conn.execute(statement, subject_id)
    status = await conn.execute(FORGET_JOURNAL, subject_id)
    count = int(status.rsplit(" ", 1)[-1])
    await conn.execute(RECORD, subject_id, count, head)
    return count
