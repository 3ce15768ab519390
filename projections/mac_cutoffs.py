"""Where each partition starts requiring record MACs (table `record_mac_cutoffs`), so a log
written before records were MACed is accepted once, by an operator.

Design: docs/developers/design/record-macs.md
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import asyncpg

#: what `plan` does with a partition
RECORDED: Final = "recorded"
UNCHANGED: Final = "unchanged"
KEPT: Final = "kept"
MOVED_FORWARD: Final = "moved forward"
MOVED_BACK: Final = "moved back"


@dataclass(frozen=True, slots=True)
class CutoffChange:
    """One partition's cut-off: what was recorded (None: nothing), what was asked, what holds
    after the command (`action` says which and why)."""

    partition: int
    recorded: int | None
    proposed: int
    result: int
    action: str

    @property
    def writes(self) -> bool:
        return self.action in (RECORDED, MOVED_FORWARD, MOVED_BACK)


def requires_mac(cutoffs: Mapping[int, int], partition: int, offset: int) -> bool:
    """Whether the record at `offset` of `partition` must carry a valid MAC."""
    return offset >= cutoffs.get(partition, 0)


def plan(
    recorded: Mapping[int, int], proposed: Mapping[int, int], *, explicit: bool, force: bool
) -> list[CutoffChange]:
    """The cut-off of each proposed partition after the command: a new one is recorded; a
    recorded one moves forward only with `force`, back only with `explicit` offsets (or
    `force`); otherwise it is kept."""
    changes: list[CutoffChange] = []
    for partition, offset in sorted(proposed.items()):
        if partition < 0 or offset < 0:
            raise ValueError(f"partition {partition}, offset {offset}: both must be >= 0")
        was = recorded.get(partition)
        if was is None:
            action = RECORDED
        elif offset == was:
            action = UNCHANGED
        elif offset > was:
            action = MOVED_FORWARD if force else KEPT
        else:
            action = MOVED_BACK if explicit or force else KEPT
        result = offset if action in (RECORDED, MOVED_FORWARD, MOVED_BACK) else (was or 0)
        changes.append(CutoffChange(partition, was, offset, result, action))
    return changes


async def load(conn: asyncpg.Connection | asyncpg.Pool, topic: str) -> dict[int, int]:
    rows = await conn.fetch(
        "SELECT log_partition, required_from FROM record_mac_cutoffs WHERE topic = $1", topic
    )
    return {r["log_partition"]: r["required_from"] for r in rows}


async def lock_for_change(conn: asyncpg.Connection) -> None:
    """Make concurrent changes of the cut-offs take turns (until the caller's transaction
    ends); projector batches, which only read them, go on."""
    await conn.execute("LOCK TABLE record_mac_cutoffs IN EXCLUSIVE MODE")


STORE = """
INSERT INTO record_mac_cutoffs AS c (topic, log_partition, required_from)
SELECT $1, * FROM unnest($2::int[], $3::bigint[])
ON CONFLICT (topic, log_partition) DO UPDATE
SET required_from = EXCLUDED.required_from, recorded_at = now()
"""


async def store(conn: asyncpg.Connection, topic: str, changes: list[CutoffChange]) -> None:
    """Write the changes `plan` decided (in the caller's transaction)."""
    written = [c for c in changes if c.writes]
    if written:
        await conn.execute(
            STORE, topic, [c.partition for c in written], [c.result for c in written]
        )


REFUSED_BELOW = """
SELECT count(*) FROM rejected_records r
JOIN unnest($2::int[], $3::bigint[]) AS c(p, required_from) ON c.p = r.log_partition
WHERE r.topic = $1 AND r.reason = $4 AND r.log_offset < c.required_from
"""


async def refused_below(
    conn: asyncpg.Connection, topic: str, cutoffs: Mapping[int, int], reason: str
) -> int:
    """How many records below the cut-offs were refused for `reason` (a projector that ran
    before the cut-off was recorded): a rebuild applies them."""
    found = await conn.fetchval(REFUSED_BELOW, topic, list(cutoffs), list(cutoffs.values()), reason)
    return int(found or 0)
