"""The pure rules of a website's banner: origins, choices, the page URL kept, GPC."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.rules.catalogue import load_catalogue
from services.rules.decisions import Decision
from services.rules.site_collection import (
    MAX_ORIGIN,
    banner_choice,
    canonical_origin,
    cut_page_url,
    default_site_purposes,
    gpc_withdrawals,
    origin_problem,
    page_url_problem,
    parse_choices,
)
from tests.properties import examples

ROOT = Path(__file__).resolve().parents[4]
CATALOGUE = load_catalogue(ROOT / "services" / "rules" / "purposes.toml")
SITE = ("cookies_analytics", "cookies_marketing")


@pytest.mark.parametrize(
    ("origin", "loopback", "accepted", "canonical"),
    [
        ("https://www.example.com", False, True, "https://www.example.com"),
        ("HTTPS://WWW.Example.COM:443", False, True, "https://www.example.com"),
        ("https://www.example.com:8443", False, True, "https://www.example.com:8443"),
        ("https://[2001:db8::1]", False, True, "https://[2001:db8::1]"),
        ("http://localhost:5173", True, True, "http://localhost:5173"),
        ("http://127.0.0.1:8080", True, True, "http://127.0.0.1:8080"),
        ("http://[::1]:80", True, True, "http://[::1]"),
        ("http://localhost:5173", False, False, None),
        ("http://www.example.com", True, False, None),
        ("https://www.example.com/", False, False, None),
        ("https://www.example.com/shop", False, False, None),
        ("https://www.example.com?x=1", False, False, None),
        ("https://www.example.com#x", False, False, None),
        ("https://user@www.example.com", False, False, None),
        ("https://www.exa mple.com", False, False, None),
        ("https://-bad.example.com", False, False, None),
        ("https://www.example.com:99999", False, False, None),
        ("ftp://www.example.com", False, False, None),
        ("www.example.com", False, False, None),
        ("", False, False, None),
        ("https://" + "a" * MAX_ORIGIN, False, False, None),
    ],
)
def test_origins(origin: str, loopback: bool, accepted: bool, canonical: str | None) -> None:
    problem = origin_problem(origin, http_loopback=loopback)
    assert (problem is None) == accepted, problem
    if canonical is not None:
        assert canonical_origin(origin) == canonical


@settings(max_examples=examples(300), deadline=None, database=None)
@given(st.text(max_size=400), st.booleans())
def test_any_text_is_an_origin_or_a_problem_never_an_error(text: str, loopback: bool) -> None:
    problem = origin_problem(text, http_loopback=loopback)
    if problem is None:
        # an accepted origin's canonical form is accepted and canonical too
        again = canonical_origin(text)
        assert origin_problem(again, http_loopback=loopback) is None
        assert canonical_origin(again) == again


def test_the_bundled_catalogue_collects_the_two_cookie_purposes_by_default() -> None:
    assert default_site_purposes(CATALOGUE) == SITE


@pytest.mark.parametrize(
    ("choices", "chosen", "fields"),
    [
        ({"cookies_analytics": True}, {"cookies_analytics": True}, []),
        ({"cookies_analytics": False, "cookies_marketing": True}, None, []),
        ({"nope": True}, {}, ["choices.nope"]),
        ({"newsletter": True}, {}, ["choices.newsletter"]),
        ({"cookies_analytics": "yes"}, {}, ["choices.cookies_analytics"]),
        ({"cookies_analytics": 1}, {}, ["choices.cookies_analytics"]),
        ({"cookies_analytics": None}, {}, ["choices.cookies_analytics"]),
        ({"cookies_analytics": True, "nope": False}, None, ["choices.nope"]),
        ([], {}, ["choices"]),
        ("all", {}, ["choices"]),
        (None, {}, ["choices"]),
    ],
)
def test_choices(choices: object, chosen: dict[str, bool] | None, fields: list[str]) -> None:
    found, problems = parse_choices(choices, SITE, CATALOGUE)
    assert [p.field for p in problems] == fields
    if chosen is not None:
        assert found == chosen


UNDECIDED = frozenset(SITE)


@pytest.mark.parametrize(
    ("chosen", "gpc", "undecided", "withdrawn"),
    [
        ({}, True, UNDECIDED, ["cookies_marketing"]),
        ({"cookies_analytics": True}, True, UNDECIDED, ["cookies_marketing"]),
        ({"cookies_marketing": True}, True, UNDECIDED, []),
        ({"cookies_marketing": False}, True, UNDECIDED, []),
        ({"cookies_analytics": True}, False, UNDECIDED, []),
        ({}, False, UNDECIDED, []),
        # the visitor's own earlier choice stands: GPC never undoes it
        ({"cookies_analytics": True}, True, {"cookies_analytics"}, []),
        ({}, True, frozenset(), []),
    ],
)
def test_gpc_withdraws_only_unchosen_undecided_direct_marketing(
    chosen: dict[str, bool], gpc: bool, undecided: frozenset[str], withdrawn: list[str]
) -> None:
    assert gpc_withdrawals(chosen, SITE, CATALOGUE, gpc=gpc, undecided=undecided) == withdrawn


def test_gpc_withdraws_nothing_for_a_site_without_direct_marketing() -> None:
    only = ("cookies_analytics",)
    assert gpc_withdrawals({}, only, CATALOGUE, gpc=True, undecided=set(only)) == []


@pytest.mark.parametrize(
    ("url", "accepted", "kept"),
    [
        ("https://www.example.com/a/b?email=x@y.example#top", True, "https://www.example.com/a/b"),
        ("https://WWW.example.com", True, "https://www.example.com/"),
        ("https://other.example.com/", False, None),
        ("http://www.example.com/", False, None),
        ("javascript:alert(1)", False, None),
        ("https://www.example.com/" + "a" * 3000, False, None),
        (
            "https://www.example.com/account;jsessionid=ABC/x",
            True,
            "https://www.example.com/account/x",
        ),
        ("https://www.example.com/u/alice@example.com/", True, "https://www.example.com/"),
        ("https://www.example.com/u/alice%40example.com", True, "https://www.example.com/"),
        ("https://www.example.com/call/+358401234567", True, "https://www.example.com/"),
        ("https://www.example.com/call/+358%2040%20123%204567", True, "https://www.example.com/"),
        (
            "https://www.example.com/shop/2026/item-12345",
            True,
            "https://www.example.com/shop/2026/item-12345",
        ),
    ],
)
def test_page_urls(url: str, accepted: bool, kept: str | None) -> None:
    problem = page_url_problem(url, "https://www.example.com")
    assert (problem is None) == accepted, problem
    if kept is not None:
        assert cut_page_url(url) == kept


@pytest.mark.parametrize(
    ("allowed", "reason", "shown"),
    [
        (True, "consent_given", True),
        (False, "no_consent", None),
        (False, "unknown_subject", None),
        (False, "consent_expired", None),
        (False, "consent_outdated", None),
        (False, "consent_withdrawn", False),
        (False, "objected_direct_marketing", False),
        (False, "erased", False),
    ],
)
def test_what_a_banner_shows(allowed: bool, reason: str, shown: bool | None) -> None:
    assert banner_choice(Decision(allowed, reason, "consent", ())) is shown
