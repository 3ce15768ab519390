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
    SessionKey,
    SessionRow,
    Timeouts,
    cookie_name,
    csrf_matches,
    csrf_token,
    ended_because,
    new_token,
    session_end,
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


@pytest.mark.parametrize(
    "presented",
    ["é", "é" * 64, "\u0661" * 64, "A" * 64, "g" * 64, "a" * 63, "a" * 65, "", " " * 64],
)
def test_a_csrf_token_not_of_the_tokens_format_never_matches(presented: str) -> None:
    assert not csrf_matches(new_token(), presented)


def test_the_csrf_token_is_64_lowercase_hex_and_upper_case_is_refused() -> None:
    one = new_token()
    token = csrf_token(one)
    assert len(token) == 64 and token == token.lower()
    assert not csrf_matches(one, token.upper())


@pytest.mark.parametrize(
    ("secure", "expected"),
    [(True, "__Host-ledger_staff_session"), (False, "ledger_staff_session")],
)
def test_a_secure_cookie_is_host_prefixed(secure: bool, expected: str) -> None:
    assert cookie_name("ledger_staff_session", secure) == expected


@pytest.mark.parametrize(
    ("scopes", "revoked", "ended", "expected"),
    [
        ({"audit"}, False, None, None),
        ({"admin"}, False, None, None),
        ({"decide"}, False, None, KEY_REVOKED),
        ({"audit"}, True, None, KEY_REVOKED),
        ({"audit"}, True, IDLE, IDLE),
    ],
)
def test_the_key_read_with_the_session_ends_it(
    scopes: set[str], revoked: bool, ended: str | None, expected: str | None
) -> None:
    key = SessionKey("dpo", frozenset(scopes), T0 if revoked else None)
    last_seen = timedelta(minutes=-31) if ended == IDLE else timedelta(0)
    assert session_end(row(last_seen), key, T0, TIMEOUTS) == expected
