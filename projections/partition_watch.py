"""What a projector knows of its partitions between batches: where it is, where the log begins,
and the high-water marks its fetches reported. From these it finds a log that lost records
(projections/log_loss.py) and reports how fresh each partition is (projections/freshness.py).

No I/O: the runner feeds it from the consumer and writes what it reports.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

from projections.freshness import Observation, caught_up
from projections.log_loss import AHEAD_OF_LOG, LogLoss, classify
from projections.projector_health import PartitionReport

#: high-water marks kept per partition while it lags: about one a second, so minutes of lag;
#: dropping the oldest only makes the caught-up instant coarser, never later than true
MAX_OBSERVATIONS: Final = 300


class PartitionWatch:
    def __init__(self) -> None:
        #: per assigned partition, the next offset to apply
        self.positions: dict[int, int] = {}
        self.log_starts: dict[int, int] = {}
        self.highwaters: dict[int, int] = {}
        self._pending: dict[int, list[Observation]] = {}
        self._polled_ms: dict[int, int] = {}
        self._caught_up_ms: dict[int, int] = {}

    def assign(
        self, partitions: Iterable[int], stored: Mapping[int, int], log_starts: Mapping[int, int]
    ) -> list[LogLoss]:
        """Start watching a new assignment; returns the partitions whose log begins after
        the stored offset (nothing stored: after offset 0)."""
        assigned = sorted(partitions)
        self.positions = {p: stored.get(p, log_starts.get(p, 0)) for p in assigned}
        self.log_starts = {p: log_starts[p] for p in assigned if p in log_starts}
        self.highwaters = {}
        self._pending = {p: [] for p in assigned}
        self._polled_ms = {}
        self._caught_up_ms = {p: t for p, t in self._caught_up_ms.items() if p in self.positions}
        losses = (classify(p, stored.get(p), log_starts.get(p), None) for p in assigned)
        return [x for x in losses if x is not None]

    def applied(self, positions: Mapping[int, int]) -> None:
        for partition, position in positions.items():
            self.positions[partition] = max(self.positions.get(partition, 0), position)

    def observe(self, partition: int, highwater: int | None, polled_ms: int | None) -> None:
        """A fetch response's high-water mark and when it came (the consumer's last poll)."""
        if partition not in self.positions or highwater is None or polled_ms is None:
            return
        self.highwaters[partition] = highwater
        if self._polled_ms.get(partition) == polled_ms:
            return
        self._polled_ms[partition] = polled_ms
        pending = self._pending.setdefault(partition, [])
        pending.append((highwater, polled_ms))
        del pending[:-MAX_OBSERVATIONS]

    def losses(self, highwaters: Mapping[int, int | None]) -> list[LogLoss]:
        """Partitions whose position is beyond the end of the log the fetches now report."""
        found = (
            classify(p, self.positions[p], None, hw)
            for p, hw in sorted(highwaters.items())
            if p in self.positions
        )
        return [x for x in found if x is not None]

    def reports(self, now_ms: int, *, stopped: bool) -> list[PartitionReport]:
        """A report per assigned partition; a stopped projector claims no new caught-up time."""
        out = []
        for p, position in sorted(self.positions.items()):
            reached, self._pending[p] = caught_up(self._pending.get(p, ()), position)
            if reached is not None and not stopped:
                self._caught_up_ms[p] = max(reached, self._caught_up_ms.get(p, reached))
            since = None if stopped else self._caught_up_ms.get(p)
            age = None if since is None else max(0, now_ms - since) / 1000
            out.append(PartitionReport(p, position, self.highwaters.get(p), age))
        return out


def refused(partition: int, offset: int, log_start: int | None, highwater: int | None) -> LogLoss:
    """The broker answered OffsetOutOfRange for `offset`: below the log start, or else beyond
    its end (the high-water mark the consumer last saw may predate the truncation)."""
    found = classify(partition, offset, log_start, highwater)
    if found is not None:
        return found
    return LogLoss(partition, AHEAD_OF_LOG, offset, log_start, None)
