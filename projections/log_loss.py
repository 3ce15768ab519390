"""Loss detection: a partition's stored offset against the bounds of the log it is read from.

Kafka is the system of record, so a stored offset the log cannot serve means the projection and
the log disagree. Beyond the high-water mark: the topic was recreated or truncated, and the
records the projection holds are no longer in the log. Below the log start offset: records
were deleted from the beginning before they were projected, so they are lost to the
projection. Either way the projector stops and says why instead of resetting its position,
which would silently re-read another history or skip records.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

AHEAD_OF_LOG: Final = "ahead_of_log"
BEFORE_LOG_START: Final = "before_log_start"
PROBLEMS: Final = (AHEAD_OF_LOG, BEFORE_LOG_START)


@dataclass(frozen=True, slots=True)
class LogLoss:
    """One partition whose log cannot serve the projection's stored offset."""

    partition: int
    problem: str
    stored_offset: int
    log_start: int | None
    highwater: int | None

    def describe(self) -> str:
        """One sentence for logs, /readyz and 503 answers."""
        if self.problem == AHEAD_OF_LOG:
            end = "unknown" if self.highwater is None else str(self.highwater)
            return (
                f"partition {self.partition}: the projection has applied the log up to offset"
                f" {self.stored_offset}, but the log ends at {end}: the topic was recreated or"
                " truncated"
            )
        return (
            f"partition {self.partition}: the projection needs the log from offset"
            f" {self.stored_offset}, but it begins at {self.log_start}: records were deleted"
            " before they were projected"
        )


def classify(
    partition: int, stored: int | None, log_start: int | None, highwater: int | None
) -> LogLoss | None:
    """None while the log can serve `stored`; an unknown bound is not checked.

    A partition with nothing stored has applied nothing, so it needs the log from offset 0: a
    log that begins later lost records before the projection ever saw them."""
    position = 0 if stored is None else stored
    if highwater is not None and position > highwater:
        return LogLoss(partition, AHEAD_OF_LOG, position, log_start, highwater)
    if log_start is not None and position < log_start:
        return LogLoss(partition, BEFORE_LOG_START, position, log_start, highwater)
    return None


def summary(losses: Sequence[LogLoss]) -> str:
    """Every loss in partition order, for one log line or answer."""
    return "; ".join(loss.describe() for loss in sorted(losses, key=lambda x: x.partition))
