"""Which bucket a request to a public page spends from (security review findings L1, L9):
the links are opened by a stand-in, the clock is an argument."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.http.rate_limit import RateLimiter
from services.identity.links import LinkClaims, LinkError, LinkKind
from services.web.page_limits import (
    ONE_CLICK_PER_MIN,
    PREFERENCES_ROUTE,
    UNSUBSCRIBE_ROUTE,
    PageLimits,
)

NOW = datetime(2026, 12, 1, tzinfo=UTC)
PROVIDER = "2001:db8:aa:bb::25"


def opener(text: str, kind: LinkKind) -> LinkClaims:
    """Tokens here read `<kind>/<subject>/<link id>`; anything else is not a link."""
    parts = text.split("/")
    if len(parts) != 3 or parts[0] != kind:
        raise LinkError("malformed")
    return LinkClaims(kind, parts[1], "newsletter", "email", None, NOW, NOW, link_id=parts[2])


def limits(per_address: int = 3, saves: int = 2) -> PageLimits:
    return PageLimits(RateLimiter(per_address), RateLimiter(ONE_CLICK_PER_MIN), RateLimiter(saves))


def test_one_click_posts_from_one_provider_are_never_throttled_by_its_address() -> None:
    """A mailbox provider posts the one-click unsubscribe of thousands of recipients from a
    few addresses: each valid link spends from its own bucket, the address's stays full."""
    page = limits(per_address=3)
    waits = [
        page.wait("POST", UNSUBSCRIBE_ROUTE, f"unsubscribe/s{i}/l{i}", PROVIDER, 0.0, opener)
        for i in range(1000)
    ]
    assert waits == [0.0] * 1000
    assert page.wait("GET", UNSUBSCRIBE_ROUTE, "unsubscribe/s1/l1", PROVIDER, 0.0, opener) == 0


def test_one_link_gets_only_its_own_bucket() -> None:
    page = limits()
    token = "unsubscribe/s1/l1"
    waits = [page.wait("POST", UNSUBSCRIBE_ROUTE, token, PROVIDER, 0.0, opener) for _ in range(11)]
    assert waits[:ONE_CLICK_PER_MIN] == [0.0] * ONE_CLICK_PER_MIN and waits[-1] > 0


@pytest.mark.parametrize(
    ("method", "route", "token"),
    [
        ("POST", UNSUBSCRIBE_ROUTE, "not a link"),
        ("POST", UNSUBSCRIBE_ROUTE, "preferences/s1/l1"),  # the other kind at /u/
        ("GET", UNSUBSCRIBE_ROUTE, "unsubscribe/s1/l1"),
        ("GET", PREFERENCES_ROUTE, "preferences/s1/l1"),
        ("POST", PREFERENCES_ROUTE, "not a link"),
    ],
    ids=["invalid-one-click", "wrong-kind", "get-u", "get-p", "invalid-save"],
)
def test_everything_else_spends_from_the_address(method: str, route: str, token: str) -> None:
    page = limits(per_address=3, saves=100)
    waits = [page.wait(method, route, token, PROVIDER, 0.0, opener) for _ in range(4)]
    assert waits[:3] == [0.0] * 3 and waits[3] > 0


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("2001:db8:aa:bb::1", "2001:db8:aa:bb:ffff::9"),
        ("192.0.2.1", "::ffff:192.0.2.1"),
    ],
    ids=["same-ipv6-64", "ipv4-mapped"],
)
def test_an_address_spends_from_its_networks_bucket(first: str, second: str) -> None:
    page = limits(per_address=2)
    token = "preferences/s1/l1"
    assert page.wait("GET", PREFERENCES_ROUTE, token, first, 0.0, opener) == 0
    assert page.wait("GET", PREFERENCES_ROUTE, token, second, 0.0, opener) == 0
    assert page.wait("GET", PREFERENCES_ROUTE, token, second, 0.0, opener) > 0
    assert page.wait("GET", PREFERENCES_ROUTE, token, "2001:db8:aa:bc::1", 0.0, opener) == 0


def test_saves_are_limited_per_subject_whatever_the_link_or_address() -> None:
    page = limits(per_address=100, saves=2)
    assert page.save_wait("s1", 0.0) == 0 and page.save_wait("s1", 0.0) == 0
    assert page.save_wait("s1", 0.0) == pytest.approx(30.0)  # 2 a minute: one back per 30 s
    assert page.save_wait("s2", 0.0) == 0
    assert page.wait("GET", PREFERENCES_ROUTE, "preferences/s1/l1", "192.0.2.1", 0.0, opener) == 0


def test_reaching_the_page_spends_nothing_of_the_subjects_saves() -> None:
    """The page spends the subject's bucket only for a save it will record (after the link's
    revocation check): posting a revoked or stale form costs the person nothing."""
    page = limits(per_address=100, saves=1)
    for n in range(20):
        token = f"preferences/s1/l{n}"
        assert page.wait("POST", PREFERENCES_ROUTE, token, "192.0.2.1", 0.0, opener) == 0
    assert page.save_wait("s1", 0.0) == 0


@given(st.lists(st.integers(0, 50), max_size=200))
def test_a_valid_one_click_post_never_touches_the_address_bucket(links: list[int]) -> None:
    page = limits(per_address=1)
    for i in links:
        page.wait("POST", UNSUBSCRIBE_ROUTE, f"unsubscribe/s/l{i}", PROVIDER, 0.0, opener)
    assert len(page.per_address) == 0
    assert page.wait("GET", UNSUBSCRIBE_ROUTE, "unsubscribe/s/l1", PROVIDER, 0.0, opener) == 0


def test_zero_turns_the_address_and_save_limits_off() -> None:
    page = limits(per_address=0, saves=0)
    for _ in range(100):
        assert page.wait("POST", PREFERENCES_ROUTE, "preferences/s/l", PROVIDER, 0.0, opener) == 0
        assert page.save_wait("s", 0.0) == 0
        assert page.wait("GET", UNSUBSCRIBE_ROUTE, "x", PROVIDER, 0.0, opener) == 0
