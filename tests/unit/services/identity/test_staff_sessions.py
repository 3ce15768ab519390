"""When a staff session has ended, and its CSRF token (services/identity/staff_sessions.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.identity.staff_sessions import (
    ABSOLUTE,
    IDLE,
    KEY_REVOKED,
    SessionRow,
    Timeouts,
    csrf_matches,
    csrf_token,
    ended_because,
    new_token,
    well_formed,
)

T0 = datetime(2025, 3, 1, 9, tzinfo=UTC)
TIMEOUTS = Timeouts(idle=timedelta(minutes=30), absolute=timedelta(hours=8))


def row(last_seen: timedelta, ended: str | None = None) -> SessionRow:
    return SessionRow(b"\0" * 32, "k1", T0, T0 + last_seen, T0 if ended else None, ended)


@pytest.mark.parametrize(
    ("last_seen", "now", "ended", "expected"),
    [
        (timedelta(0), timedelta(minutes=29, seconds=59), None, None),
        (timedelta(0), timedelta(minutes=30), None, IDLE),
        (timedelta(hours=7, minutes=50), timedelta(hours=7, minutes=59), None, None),
        (timedelta(hours=7, minutes=50), timedelta(hours=8), None, ABSOLUTE),
        (timedelta(hours=2), timedelta(hours=9), None, ABSOLUTE),
        (timedelta(0), timedelta(minutes=1), KEY_REVOKED, KEY_REVOKED),
    ],
)
def test_when_a_session_ends(
    last_seen: timedelta, now: timedelta, ended: str | None, expected: str | None
) -> None:
    assert ended_because(row(last_seen, ended), T0 + now, TIMEOUTS) == expected


@given(st.integers(0, 8 * 60), st.integers(0, 10 * 60))
def test_a_live_session_is_within_both_timeouts(seen_min: int, now_min: int) -> None:
    now = T0 + timedelta(minutes=max(seen_min, now_min))
    live = ended_because(row(timedelta(minutes=seen_min)), now, TIMEOUTS) is None
    within = now - T0 < TIMEOUTS.absolute and now - (T0 + timedelta(minutes=seen_min)) < (
        TIMEOUTS.idle
    )
    assert live == within


def test_the_csrf_token_belongs_to_one_session() -> None:
    one, other = new_token(), new_token()
    assert well_formed(one) and len(one) == 43
    assert csrf_matches(one, csrf_token(one))
    assert not csrf_matches(other, csrf_token(one))
    assert not csrf_matches(one, None) and not csrf_matches(one, "x" * 10_000)


@pytest.mark.parametrize("value", [None, "", "a" * 65, "abc def", "é" * 10, "a;b"])
def test_a_malformed_cookie_is_no_token(value: str | None) -> None:
    assert not well_formed(value)
