"""How fresh the projection is, and the staleness guard's rule.

Design: docs/developers/design/projector-health.md
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from projections.log_loss import LogLoss, summary

#: (high-water mark, wall-clock milliseconds of the fetch response that reported it)
Observation = tuple[int, int]


def caught_up(
    observations: Iterable[Observation], position: int
) -> tuple[int | None, list[Observation]]:
    """The latest instant whose high-water mark `position` has reached (None if none has),
    and the observations it has not reached yet, in their order."""
    reached: int | None = None
    left: list[Observation] = []
    for highwater, at_ms in observations:
        if highwater <= position:
            reached = at_ms if reached is None else max(reached, at_ms)
        else:
            left.append((highwater, at_ms))
    return reached, left


@dataclass(frozen=True, slots=True)
class PartitionFreshness:
    """A partition as its projector last reported it; `behind_s` None: never caught up."""

    partition: int
    position: int
    highwater: int | None
    behind_s: float | None
    #: the writer key ids its projector checks MACs with (None: it did not say, an earlier
    #: version)
    writer_key_ids: tuple[str, ...] | None = None

    @property
    def lag(self) -> int | None:
        """Records in the log not yet applied (never negative)."""
        return None if self.highwater is None else max(0, self.highwater - self.position)


@dataclass(frozen=True, slots=True)
class Verdict:
    """May decisions be answered from the projection, and if not, why."""

    fresh: bool
    reason: str | None
    #: the largest `behind_s` over the partitions; inf when one never caught up or none reported
    staleness_s: float
    #: why commands must not write now (None: they may): a projector would dead-letter it
    writes_refused: str | None = None


WRITER_KEY_ADVICE: Final = (
    "give the projectors the current writer keys (`consent-ledger init --writer-keys-file`)"
    " and restart them; on a rotation, restart the projectors before the API"
)


def _partitions(partitions: Iterable[PartitionFreshness]) -> str:
    return ", ".join(str(p.partition) for p in partitions)


def unknown_writer_key(partitions: Sequence[PartitionFreshness], writer_key_id: str) -> str | None:
    """Why a record MACed with `writer_key_id` would be dead-lettered: the partitions whose
    projector reported writer keys without it. None when every projector that said which keys
    it checks with knows it."""
    lacking = [
        (p, p.writer_key_ids)
        for p in partitions
        if p.writer_key_ids is not None and writer_key_id not in p.writer_key_ids
    ]
    if not lacking:
        return None
    known = ", ".join(sorted({k for _, ids in lacking for k in ids})) or "none"
    return (
        f"the projector of partition {_partitions(p for p, _ in lacking)} does not know writer"
        f" key {writer_key_id}, which this API MACs new records with (it knows {known}), and"
        f" would dead-letter them as unauthenticated-record; {WRITER_KEY_ADVICE}"
    )


def staleness(partitions: Iterable[PartitionFreshness]) -> float:
    """How far the projection is behind: the worst partition (inf when one never caught up)."""
    worst = 0.0
    for p in partitions:
        worst = max(worst, math.inf if p.behind_s is None else max(0.0, p.behind_s))
    return worst


def assess(
    partitions: Sequence[PartitionFreshness],
    stops: Sequence[LogLoss],
    partition_count: int,
    max_staleness_s: float,
    writer_key_id: str,
) -> Verdict:
    """The staleness guard: not fresh while the projector is stopped by a loss or a reporting
    projector does not know `writer_key_id` (the API's current writer key; commands are then
    refused too), or (unless the limit is 0, the guard off) while a partition is unreported,
    has not said which writer keys its projector knows, or is behind beyond the limit."""
    reported = {p.partition for p in partitions}
    worst = staleness(partitions) if reported else math.inf
    refused = unknown_writer_key(partitions, writer_key_id)
    if stops:
        return Verdict(False, f"the projector stopped: {summary(stops)}", worst, refused)
    if refused is not None:
        return Verdict(False, refused, worst, refused)
    if max_staleness_s <= 0:
        return Verdict(True, None, worst)
    missing = sorted(set(range(partition_count)) - reported)
    if missing:
        names = ", ".join(map(str, missing))
        return Verdict(False, f"no projector has reported partition {names} yet", worst)
    unsaid = [p for p in partitions if p.writer_key_ids is None]
    if unsaid:
        why = f"the projector of partition {_partitions(unsaid)} has not said which writer keys"
        why += " it checks MACs with (a version before this API's: upgrade it)"
        return Verdict(False, why, worst)
    if worst > max_staleness_s:
        late = max(partitions, key=lambda p: math.inf if p.behind_s is None else p.behind_s)
        if late.behind_s is None:
            why = f"partition {late.partition} has not caught up with the log yet"
        else:
            why = f"the projection is {late.behind_s:.1f} s behind the log"
            why += f" on partition {late.partition}"
        return Verdict(False, f"{why} (limit {max_staleness_s:g} s)", worst)
    return Verdict(True, None, worst)
