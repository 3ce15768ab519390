"""The dispatcher's pure rules (services/rules/webhook_delivery.py): who receives an event,
the retry schedule with full jitter, and the retry window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.rules.webhook_delivery import (
    CLOCK_TOLERANCE,
    RETRY_CEILINGS_S,
    Subscriber,
    next_attempt_at,
    retry_ceiling_s,
    subscribers_of,
)

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
A, B, C = UUID(int=1), UUID(int=2), UUID(int=3)
SUBS = (
    Subscriber(A, frozenset({"ConsentWithdrawn", "SubjectErased"}), T0),
    Subscriber(B, frozenset({"ConsentWithdrawn"}), T0 + timedelta(hours=1)),
    Subscriber(C, frozenset({"ConsentGranted"}), T0 - DAY),
)


@pytest.mark.parametrize(
    ("event_type", "recorded_at", "expected"),
    [
        ("ConsentWithdrawn", T0, [A]),  # B did not exist yet
        ("ConsentWithdrawn", T0 + timedelta(hours=1), [A, B]),  # at creation counts
        # stamped by an API clock a second behind the database's: not missed
        ("ConsentWithdrawn", T0 - timedelta(seconds=1), [A]),
        ("ConsentWithdrawn", T0 - CLOCK_TOLERANCE, [A]),
        ("ConsentWithdrawn", T0 - CLOCK_TOLERANCE - timedelta(microseconds=1), []),
        ("SubjectErased", T0 + DAY, [A]),
        ("ConsentGranted", T0, [C]),
        ("NoticePublished", T0 + DAY, []),
    ],
)
def test_subscribers_of(event_type: str, recorded_at: datetime, expected: list[UUID]) -> None:
    assert subscribers_of(event_type, recorded_at, SUBS) == expected


@pytest.mark.parametrize(
    ("failed", "ceiling"),
    [(1, 1.0), (2, 5.0), (3, 30.0), (4, 120.0), (5, 600.0), (6, 1800.0), (7, 3600.0), (50, 3600.0)],
)
def test_retry_ceiling(failed: int, ceiling: float) -> None:
    assert retry_ceiling_s(failed) == ceiling


def test_no_ceiling_before_a_failure() -> None:
    with pytest.raises(ValueError, match="failed_attempts"):
        retry_ceiling_s(0)


@pytest.mark.parametrize(
    ("failed", "failed_at", "draw", "expected"),
    [
        (1, T0, 0.0, T0),
        (1, T0, 0.5, T0 + timedelta(seconds=0.5)),
        (3, T0, 0.5, T0 + timedelta(seconds=15)),
        (7, T0 + DAY - timedelta(minutes=30), 0.999, None),  # after the window: park
        (7, T0 + DAY - timedelta(minutes=30), 0.4, T0 + DAY - timedelta(minutes=6)),
        (2, T0 + DAY, 0.0, T0 + DAY),  # exactly at the window's end is still inside
        (2, T0 + DAY, 0.1, None),
    ],
)
def test_next_attempt_at(
    failed: int, failed_at: datetime, draw: float, expected: datetime | None
) -> None:
    got = next_attempt_at(
        failed_attempts=failed, failed_at=failed_at, window_from=T0, window=DAY, draw=draw
    )
    assert got == expected


def test_a_draw_outside_the_unit_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="draw"):
        next_attempt_at(failed_attempts=1, failed_at=T0, window_from=T0, window=DAY, draw=1.0)


@given(
    failed=st.integers(1, 200),
    offset_s=st.floats(0, 2 * 86400),
    draw=st.floats(0, 1, exclude_max=True),
)
def test_next_attempt_within_ceiling_and_window(failed: int, offset_s: float, draw: float) -> None:
    failed_at = T0 + timedelta(seconds=offset_s)
    got = next_attempt_at(
        failed_attempts=failed, failed_at=failed_at, window_from=T0, window=DAY, draw=draw
    )
    if got is None:
        assert failed_at + timedelta(seconds=draw * retry_ceiling_s(failed)) > T0 + DAY
    else:
        assert failed_at <= got <= failed_at + timedelta(seconds=retry_ceiling_s(failed))
        assert got <= T0 + DAY


@given(st.integers(1, 100))
def test_ceilings_never_shrink(failed: int) -> None:
    assert retry_ceiling_s(failed) <= retry_ceiling_s(failed + 1) <= max(RETRY_CEILINGS_S)
