"""A client address becomes its network, a user agent is cut, and an asserted value is refused
with a reason: tables for the cases, hypothesis for every address."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.context_values import (
    MAX_USER_AGENT,
    canonical_network,
    client_address_problem,
    cut_user_agent,
    embedded_ipv4,
    page_problem,
    page_version_problem,
    truncated_network,
    user_agent_problem,
)


@pytest.mark.parametrize(
    ("host", "network"),
    [
        ("203.0.113.7", "203.0.113.0/24"),
        ("203.0.113.0", "203.0.113.0/24"),
        ("10.1.2.255", "10.1.2.0/24"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1::/48"),
        ("2001:DB8:1::1", "2001:db8:1::/48"),
        ("fe80::1%eth0", "fe80::/48"),
        ("::ffff:198.51.100.9", "198.51.100.0/24"),
        # IPv6 addresses that carry a whole IPv4 one: truncated as that IPv4 address
        ("2002:c000:0204::1", "192.0.2.0/24"),  # 6to4
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "192.0.2.0/24"),  # Teredo's client
        ("64:ff9b::c000:22d", "192.0.2.0/24"),  # NAT64
        ("::1", "::/48"),
        ("testclient", None),
        ("", None),
        ("/run/ledger.sock", None),
        ("1" * 65, None),
    ],
)
def test_truncated_network(host: str, network: str | None) -> None:
    assert truncated_network(host) == network


@given(st.ip_addresses())
def test_the_network_holds_the_address_and_never_spells_it(address: ipaddress._BaseAddress) -> None:
    network = truncated_network(str(address))
    assert network is not None
    parsed = ipaddress.ip_network(network)
    embedded = embedded_ipv4(address) if isinstance(address, ipaddress.IPv6Address) else None
    assert (embedded or address) in parsed
    assert parsed.prefixlen == (24 if parsed.version == 4 else 48)
    assert client_address_problem(network) is None
    assert canonical_network(network) == network
    # the host part is gone: every address of the same network gives the same text (an IPv6
    # /48 whose first address happens to embed an IPv4 one aside)
    first = parsed.network_address
    if not isinstance(first, ipaddress.IPv6Address) or embedded_ipv4(first) is None:
        assert truncated_network(str(first)) == network


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        (None, None),
        ("", None),
        ("   ", None),
        ("Mozilla/5.0 (X11; Linux x86_64)", "Mozilla/5.0 (X11; Linux x86_64)"),
        ("a" * 300, "a" * MAX_USER_AGENT),
        ("bad\x00agent", "badagent"),
        ("lone \ud800 surrogate", "lone  surrogate"),
    ],
)
def test_cut_user_agent(text: str | None, kept: str | None) -> None:
    assert cut_user_agent(text) == kept


@given(st.text(max_size=600))
def test_a_cut_user_agent_is_storable_and_within_the_limit(text: str) -> None:
    kept = cut_user_agent(text)
    if kept is not None:
        assert 0 < len(kept) <= MAX_USER_AGENT
        assert "\x00" not in kept
        kept.encode("utf-8")
        assert user_agent_problem(kept) is None


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("203.0.113.0/24", None),
        ("2001:db8:1::/48", None),
        ("2001:DB8:1:0::/48", None),
        ("203.0.113.7", "is a full client address"),
        ("2001:db8::1", "is a full client address"),
        ("2002:c000:204::/48", "is a 6to4 network"),
        ("203.0.113.7/24", "must be an IPv4 /24"),
        ("203.0.0.0/16", "is a /16 network"),
        ("203.0.113.7/32", "is a /32 network"),
        ("2001:db8::/64", "is a /64 network"),
        ("2001:db8:1::5/48", "must be an IPv4 /24"),
        ("not an address", "must be an IPv4 /24"),
        ("", "is 0 characters long"),
        ("1" * 65, "is 65 characters long"),
    ],
)
def test_client_address_problem(value: str, problem: str | None) -> None:
    found = client_address_problem(value)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


@given(st.text(max_size=100))
def test_an_accepted_client_address_is_a_network_of_the_right_size(value: str) -> None:
    if client_address_problem(value) is None:
        network = ipaddress.ip_network(value, strict=True)
        assert network.prefixlen == (24 if network.version == 4 else 48)


@pytest.mark.parametrize(
    ("check", "value", "ok"),
    [
        (user_agent_problem, "curl/8.5", True),
        (user_agent_problem, "a" * MAX_USER_AGENT, True),
        (user_agent_problem, "a" * (MAX_USER_AGENT + 1), False),
        (user_agent_problem, " ", False),
        (page_problem, "unsubscribe", True),
        (page_problem, "signup-form_2", True),
        (page_problem, "Signup", False),
        (page_problem, "a" * 65, False),
        (page_problem, "", False),
        (page_version_problem, "2026-02", True),
        (page_version_problem, "3f9a0c61d2b4", True),
        (page_version_problem, "v 2", False),
        (page_version_problem, "v" * 65, False),
    ],
)
def test_asserted_text_checks(check: object, value: str, ok: bool) -> None:
    assert callable(check)
    assert (check(value) is None) == ok
