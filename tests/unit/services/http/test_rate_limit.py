"""The public pages' token buckets per key, with the clock as an argument, and the keys of
client addresses."""

from __future__ import annotations

import copy
from ipaddress import IPv4Address, IPv6Address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.http.rate_limit import RateLimiter, client_key, retry_after


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


# --- keys and eviction (security review finding L1) --------------------------------------------


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::", "2001:db8:1:2::/64"),
        ("2001:DB8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
        ("fe80::1%eth0", "fe80::/64"),
        ("::1", "::/64"),
        ("testclient", "testclient"),
        ("", ""),
    ],
)
def test_client_key(host: str, key: str) -> None:
    assert client_key(host) == key


@given(st.ip_addresses(v=6), st.integers(0, 2**64 - 1))
def test_every_address_of_an_ipv6_64_shares_one_key(address: IPv6Address, host: int) -> None:
    network = int(address) >> 64 << 64
    other = IPv6Address(network | host)
    if address.ipv4_mapped is None and other.ipv4_mapped is None:
        assert client_key(str(address)) == client_key(str(other))
        neighbour = IPv6Address((network + (1 << 64)) % 2**128 | host)
        if neighbour.ipv4_mapped is None:
            assert client_key(str(neighbour)) != client_key(str(address))


@given(st.ip_addresses(v=4))
def test_an_ipv4_mapped_address_is_its_ipv4_address(address: IPv4Address) -> None:
    assert client_key(f"::ffff:{address}") == client_key(str(address)) == str(address)


def test_a_flood_of_new_addresses_does_not_forget_a_throttled_one() -> None:
    """Filling the table with fresh addresses used to drop the oldest half, throttled buckets
    included, so a client held back got its allowance again by making others arrive."""
    limiter = RateLimiter(per_minute=5, max_buckets=100)
    for _ in range(5):
        limiter.take("abuser", 0.0)
    assert limiter.take("abuser", 0.0) > 0
    for i in range(1000):  # each new address spends one request: its bucket is nearly full
        limiter.take(f"flood-{i}", 1.0 + i * 0.001)
        assert len(limiter) <= 100
    assert limiter.take("abuser", 2.0) > 0


@given(
    st.integers(2, 20),
    st.lists(
        st.tuples(st.integers(0, 10**6), st.floats(0, 1)),
        min_size=51,  # past max_buckets: the table overflows at least once
        max_size=600,
        unique_by=lambda step: step[0],
    ),
)
def test_eviction_never_forgets_an_emptier_bucket_before_a_fuller_one(
    per_minute: int, steps: list[tuple[int, float]]
) -> None:
    """Whatever new keys arrive, however fast, a key held back (an empty bucket) stays held
    back while the table overflows with keys that spent less."""
    limiter = RateLimiter(per_minute, max_buckets=50)
    now = 0.0
    for _ in range(per_minute):
        limiter.take("held", now)
    for key, gap in steps:
        now += gap / 1000
        limiter.take(f"k{key}", now)
    assert limiter.take("held", now) > 0
