"""The public pages' token bucket per client address, with the clock as an argument."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.rate_limit import RateLimiter, retry_after


def test_a_burst_of_the_minutes_allowance_then_a_wait() -> None:
    limiter = RateLimiter(per_minute=3)
    assert [limiter.take("a", 100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a", 100.0) == pytest.approx(20.0)  # one request per 20 s comes back
    assert limiter.take("a", 110.0) == pytest.approx(10.0)
    assert limiter.take("a", 120.0) == 0.0
    assert limiter.take("a", 120.0) == pytest.approx(20.0)


def test_addresses_have_their_own_buckets() -> None:
    limiter = RateLimiter(per_minute=1)
    assert limiter.take("a", 0.0) == 0.0
    assert limiter.take("a", 0.0) > 0
    assert limiter.take("b", 0.0) == 0.0


def test_zero_is_no_limit() -> None:
    limiter = RateLimiter(per_minute=0)
    assert all(limiter.take("a", 0.0) == 0.0 for _ in range(1000))
    assert len(limiter) == 0


@pytest.mark.parametrize(
    ("seconds", "header"), [(0.01, 1), (0.5, 1), (1.0, 1), (1.2, 2), (19.99, 20), (20.0, 20)]
)
def test_retry_after_is_whole_seconds_never_zero(seconds: float, header: int) -> None:
    assert retry_after(seconds) == header


@given(
    st.integers(1, 120),
    st.lists(st.tuples(st.floats(0, 30), st.sampled_from("abc")), max_size=300),
)
def test_no_address_gets_more_than_its_allowance(
    per_minute: int, steps: list[tuple[float, str]]
) -> None:
    """Over any run, an address is allowed at most the burst plus what refilled meanwhile; a
    refusal's wait is exactly the time until the next request is allowed."""
    limiter = RateLimiter(per_minute)
    now = 0.0
    allowed = {"a": 0, "b": 0, "c": 0}
    for gap, address in steps:
        now += gap
        wait = limiter.take(address, now)
        if wait == 0:
            allowed[address] += 1
        else:
            assert 0 < wait <= 60 / per_minute + 1e-9
            probe = copy.deepcopy(limiter)
            assert probe.take(address, now + wait * 0.999) > 0
            assert probe.take(address, now + wait + 1e-6) == 0
    for count in allowed.values():
        assert count <= per_minute + now * per_minute / 60 + 1e-6


@given(st.integers(1, 50))
def test_memory_stays_bounded_under_many_addresses(per_minute: int) -> None:
    limiter = RateLimiter(per_minute, max_buckets=100)
    for i in range(1000):
        assert limiter.take(f"10.0.{i // 256}.{i % 256}", i * 0.001) == 0.0
        assert len(limiter) <= 100


def test_forgetting_full_buckets_keeps_the_spending_ones() -> None:
    limiter = RateLimiter(per_minute=1, max_buckets=3)
    limiter.take("old", 0.0)  # spent at 0, full again at 60
    limiter.take("busy", 100.0)
    limiter.take("other", 100.0)
    limiter.take("new", 100.0)  # the fourth address: "old" is full and is forgotten
    assert len(limiter) == 3
    assert limiter.take("busy", 100.0) > 0  # still remembered as spent
