"""How fresh the projection is, and the staleness guard's rule.

A partition is *caught up as of* instant T when the projection holds every record its log held
at T. The projector learns the log's size from the high-water mark of each fetch response and
the instant of that response; once its position reaches a high-water mark, it is caught up as
of that response. A partition is *behind* by now - (the latest such instant): a projector that
keeps up refreshes it about once a second; one that lags, hangs or has died lets it grow. So a
projector that stops reporting (its heartbeat) makes the projection stale by the same measure.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

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
) -> Verdict:
    """The staleness guard: not fresh while the projector is stopped by a loss, or (unless the
    limit is 0, the guard off) while a partition is unreported or behind beyond the limit."""
    reported = {p.partition for p in partitions}
    worst = staleness(partitions) if reported else math.inf
    if stops:
        return Verdict(False, f"the projector stopped: {summary(stops)}", worst)
    if max_staleness_s <= 0:
        return Verdict(True, None, worst)
    missing = sorted(set(range(partition_count)) - reported)
    if missing:
        names = ", ".join(map(str, missing))
        return Verdict(False, f"no projector has reported partition {names} yet", worst)
    if worst > max_staleness_s:
        late = max(partitions, key=lambda p: math.inf if p.behind_s is None else p.behind_s)
        if late.behind_s is None:
            why = f"partition {late.partition} has not caught up with the log yet"
        else:
            why = f"the projection is {late.behind_s:.1f} s behind the log"
            why += f" on partition {late.partition}"
        return Verdict(False, f"{why} (limit {max_staleness_s:g} s)", worst)
    return Verdict(True, None, worst)
