"""Refused API keys per client address: the limit, the block before any key is checked, and
bounded memory; the clock is an argument."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.http.failed_keys import FailedKeyLimit
from services.http.rate_limit import RateLimiter


def limit(per_minute: int, max_blocked: int = 100) -> FailedKeyLimit:
    return FailedKeyLimit(RateLimiter(per_minute), max_blocked)


def test_failures_within_the_limit_then_a_block() -> None:
    failures = limit(3)
    assert [failures.failed("a", 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert failures.wait("a", 0.0) == 0.0  # three refusals: still allowed to try
    assert failures.failed("a", 0.0) == pytest.approx(20.0)  # one try back every 20 s
    assert failures.wait("a", 5.0) == pytest.approx(15.0)  # blocked: no key is checked
    assert failures.wait("a", 20.0) == 0.0
    assert failures.failed("a", 20.0) == 0.0  # the try that came back
    assert failures.failed("a", 20.0) == pytest.approx(20.0)


def test_addresses_are_counted_apart() -> None:
    failures = limit(1)
    assert failures.failed("a", 0.0) == 0.0
    assert failures.failed("a", 0.0) > 0
    assert failures.wait("a", 1.0) > 0
    assert failures.wait("b", 1.0) == 0.0
    assert failures.failed("b", 1.0) == 0.0


def test_zero_is_no_limit() -> None:
    failures = limit(0)
    assert all(failures.failed("a", 0.0) == 0.0 for _ in range(1000))
    assert failures.wait("a", 0.0) == 0.0 and len(failures) == 0


def test_blocks_stay_bounded_under_a_flood_of_addresses() -> None:
    failures = limit(1, max_blocked=10)
    for n in range(1000):
        address = f"203.0.113.{n}"
        failures.failed(address, float(n))
        failures.failed(address, float(n))
        assert len(failures) <= 10


@given(
    st.integers(1, 60),
    st.lists(st.tuples(st.floats(0, 10), st.sampled_from("ab")), max_size=200),
)
def test_no_address_gets_more_refusals_than_its_allowance(
    per_minute: int, steps: list[tuple[float, str]]
) -> None:
    """An attacker who keeps trying is refused without a check while blocked; the keys it gets
    checked (the 401s) never exceed the burst plus what refilled meanwhile."""
    failures = limit(per_minute)
    now = 0.0
    checked = {"a": 0, "b": 0}
    for gap, address in steps:
        now += gap
        if failures.wait(address, now):
            continue  # 429 before the key is looked at
        if not failures.failed(address, now):
            checked[address] += 1
    for count in checked.values():
        assert count <= per_minute + now * per_minute / 60 + 1e-9
