"""The issue's data sizes, and the sizes a run uses at a given scale.

A run below scale 1 says so in every line it affects ("reduced"): a figure measured on 100,000
subjects is never shown as if it were the 1,000,000-subject figure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

ISSUE_SUBJECTS: Final = 1_000_000
ISSUE_REPLAY_EVENTS: Final = 1_000_000
ISSUE_BATCH: Final = 100_000
ISSUE_HISTORY_EVENTS: Final = 1_000
ISSUE_GROWTH: Final = (100_000, 1_000_000, 10_000_000)
ISSUE_E2E_RATE: Final = 1_000
#: the smallest state worth measuring: below it everything sits in one page of cache
MIN_SUBJECTS: Final = 1_000


@dataclass(frozen=True, slots=True)
class Sizes:
    scale: float
    subjects: int
    batch: int
    history_events: int
    growth: tuple[int, ...]
    e2e_rate: int


def scaled(count: int, scale: float) -> int:
    return max(MIN_SUBJECTS, round(count * scale))


def sizes_for(scale: float, e2e_rate: int = ISSUE_E2E_RATE) -> Sizes:
    """Subjects in state and the growth steps follow the scale; the batch is capped by the
    subjects there are; the history subject and the end-to-end rate do not depend on it."""
    if scale <= 0:
        raise ValueError(f"scale must be above 0, not {scale}")
    subjects = scaled(ISSUE_SUBJECTS, scale)
    growth = tuple(sorted({scaled(n, scale) for n in ISSUE_GROWTH}))
    return Sizes(
        scale=scale,
        subjects=subjects,
        batch=min(ISSUE_BATCH, subjects),
        history_events=ISSUE_HISTORY_EVENTS,
        growth=growth,
        e2e_rate=e2e_rate,
    )


def size_note(actual: int, issue: int, unit: str) -> tuple[str, bool]:
    """The size column and whether the run was smaller than the issue asks."""
    if actual >= issue:
        return f"{actual:,} {unit}", False
    return f"{actual:,} of {issue:,} {unit}", True
