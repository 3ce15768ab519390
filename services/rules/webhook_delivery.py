"""What the webhook dispatcher decides without I/O: which subscriptions an event is delivered
to, and when a failed delivery is tried again or parked.

Design: docs/developers/design/webhooks.md
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final
from uuid import UUID

#: the ceiling of each retry's delay, in seconds: within seconds first (1 s, 5 s, 30 s), then
#: growing about fourfold to an hour, then every hour until the retry window closes
RETRY_CEILINGS_S: Final = (1.0, 5.0, 30.0, 120.0, 600.0, 1800.0, 3600.0)
#: how far an API process's clock (which stamps recorded_at) may be behind the database's
#: (which stamps a subscription's created_at) without an event recorded after the
#: subscription was created being missed; events recorded up to this long before it may be
#: delivered too
CLOCK_TOLERANCE: Final = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class Subscriber:
    """What fan-out needs of a subscription."""

    id: UUID
    event_types: frozenset[str]
    created_at: datetime


def subscribers_of(
    event_type: str, recorded_at: datetime, subscriptions: Iterable[Subscriber]
) -> list[UUID]:
    """The subscriptions an event is delivered to: those of its type that existed when it was
    recorded, within CLOCK_TOLERANCE (a new subscription receives what is recorded from then
    on, not the history; recorded_at and created_at come from different clocks)."""
    return [
        s.id
        for s in subscriptions
        if event_type in s.event_types and recorded_at >= s.created_at - CLOCK_TOLERANCE
    ]


def retry_ceiling_s(failed_attempts: int) -> float:
    """The longest delay before the next attempt after `failed_attempts` (1 or more)."""
    if failed_attempts < 1:
        raise ValueError("failed_attempts must be at least 1")
    return RETRY_CEILINGS_S[min(failed_attempts, len(RETRY_CEILINGS_S)) - 1]


def next_attempt_at(
    *,
    failed_attempts: int,
    failed_at: datetime,
    window_from: datetime,
    window: timedelta,
    draw: float,
) -> datetime | None:
    """When to try again after `failed_attempts` failures, the last at `failed_at`: a delay
    drawn uniformly up to the ceiling (full jitter; `draw` in [0, 1) is the random draw, so
    receivers that failed together are not retried together), or None (park) once the attempt
    would fall after the retry window that began at `window_from`."""
    if not 0.0 <= draw < 1.0:
        raise ValueError("draw must be in [0, 1)")
    delay = timedelta(seconds=draw * retry_ceiling_s(failed_attempts))
    due = failed_at + delay
    return None if due > window_from + window else due
