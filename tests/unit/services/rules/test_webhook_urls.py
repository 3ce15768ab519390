"""Which webhook URLs are accepted and which addresses a delivery may connect to: tables of
the cases that matter for server-side request forgery, and properties over every address."""

from __future__ import annotations

import ipaddress
from urllib.parse import unquote, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.rules.webhook_urls import (
    LOOPBACK,
    MAX_URL_LENGTH,
    PRIVATE,
    REFUSED,
    IPAddress,
    address_allowed,
    check_url,
    embedded_ipv4,
)

OFF = {"allow_loopback": False, "allow_private": False}
ON = {"allow_loopback": True, "allow_private": True}


@pytest.mark.parametrize(
    ("address", "off", "loopback", "private"),
    [
        # (address, allowed with both off, with loopback allowed, with private allowed)
        ("93.184.215.14", True, True, True),
        ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", True, True, True),
        ("127.0.0.1", False, True, False),
        ("127.255.0.9", False, True, False),
        ("::1", False, True, False),
        ("10.1.2.3", False, False, True),
        ("172.16.0.1", False, False, True),
        ("172.31.255.255", False, False, True),
        ("172.32.0.1", True, True, True),
        ("192.168.1.1", False, False, True),
        ("fd00::1", False, False, True),
        ("169.254.169.254", False, False, False),
        ("fe80::1", False, False, False),
        ("0.0.0.0", False, False, False),
        ("::", False, False, False),
        ("100.64.0.1", False, False, False),
        ("100.127.255.254", False, False, False),
        ("224.0.0.251", False, False, False),
        ("239.255.255.250", False, False, False),
        ("ff02::1", False, False, False),
        ("255.255.255.255", False, False, False),
        ("240.0.0.1", False, False, False),
        ("192.0.2.1", False, False, False),
        ("198.18.0.1", False, False, False),
        ("2001:db8::1", False, False, False),
        ("fec0::1", False, False, False),
        ("2001::1", False, False, False),  # Teredo
        ("::ffff:127.0.0.1", False, True, False),
        ("::ffff:169.254.169.254", False, False, False),
        ("::ffff:10.0.0.1", False, False, True),
        ("::ffff:93.184.215.14", True, True, True),
        ("2002:7f00:1::", False, True, False),  # 6to4 of 127.0.0.1
        ("2002:a9fe:a9fe::1", False, False, False),  # 6to4 of 169.254.169.254
        ("2002:5db8:d70e::1", True, True, True),  # 6to4 of a public address
        ("64:ff9b::a9fe:a9fe", False, False, False),  # NAT64 of 169.254.169.254
        ("64:ff9b::7f00:1", False, True, False),  # NAT64 of 127.0.0.1
        ("64:ff9b::5db8:d70e", True, True, True),
        ("64:ff9b:1::1", False, False, False),
        ("::127.0.0.1", False, False, False),  # IPv4-compatible
        ("::ffff:0:7f00:1", False, False, False),  # IPv4-translated
    ],
)
def test_address_table(address: str, off: bool, loopback: bool, private: bool) -> None:
    ip = ipaddress.ip_address(address)
    assert address_allowed(ip, **OFF) is off
    assert address_allowed(ip, allow_loopback=True, allow_private=False) is loopback
    assert address_allowed(ip, allow_loopback=False, allow_private=True) is private


_addresses = st.ip_addresses()


@given(_addresses, st.booleans(), st.booleans())
def test_allowing_more_never_refuses_what_was_allowed(
    ip: IPAddress, loopback: bool, private: bool
) -> None:
    if address_allowed(ip, allow_loopback=loopback, allow_private=private):
        assert address_allowed(ip, **ON)


@given(_addresses)
def test_what_is_allowed_with_both_off_is_public_unicast(ip: IPAddress) -> None:
    if address_allowed(ip, **OFF):
        inner = embedded_ipv4(ip) or ip
        assert not inner.is_loopback
        assert not inner.is_multicast
        assert not inner.is_link_local
        assert not inner.is_unspecified
        assert not any(inner in net for net in (*LOOPBACK, *PRIVATE, *REFUSED))


@given(_addresses)
def test_what_is_allowed_with_both_off_is_global_to_the_standard_library(ip: IPAddress) -> None:
    # an independent judge: the module's tables are its own, is_global is Python's
    if address_allowed(ip, **OFF):
        assert (embedded_ipv4(ip) or ip).is_global


@given(st.ip_addresses(v=4), st.booleans(), st.booleans())
def test_an_ipv4_address_wrapped_in_ipv6_is_judged_as_itself(
    ip: ipaddress.IPv4Address, loopback: bool, private: bool
) -> None:
    flags = {"allow_loopback": loopback, "allow_private": private}
    expected = address_allowed(ip, **flags)
    mapped = ipaddress.IPv6Address(f"::ffff:{ip}")
    sixtofour = ipaddress.IPv6Address((0x2002 << 112) | (int(ip) << 80) | 1)
    nat64 = ipaddress.IPv6Address(f"64:ff9b::{ip}")
    for wrapped in (mapped, sixtofour, nat64):
        assert embedded_ipv4(wrapped) == ip
        assert address_allowed(wrapped, **flags) is expected


@given(st.ip_addresses(network="10.0.0.0/8") | st.ip_addresses(network="169.254.0.0/16"))
def test_no_private_or_link_local_address_passes_by_default(ip: IPAddress) -> None:
    assert not address_allowed(ip, **OFF)


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("https://crm.example.com/hooks/ledger", "https://crm.example.com/hooks/ledger"),
        ("HTTPS://CRM.Example.COM", "https://crm.example.com/"),
        ("https://crm.example.com:443/x?a=1", "https://crm.example.com/x?a=1"),
        ("https://crm.example.com:8443/x", "https://crm.example.com:8443/x"),
        ("https://crm.example.com./x", "https://crm.example.com/x"),
        ("https://bücher.example/x", "https://xn--bcher-kva.example/x"),
        ("https://93.184.215.14/x", "https://93.184.215.14/x"),
        ("https://[2606:2800:021f::1]/x", "https://[2606:2800:21f::1]/x"),
        ("https://[2606:2800:21f::1]:8443/x", "https://[2606:2800:21f::1]:8443/x"),
        # IDNA 2008 (UTS 46): ß is a letter of its own, not "ss" as IDNA 2003 made it
        ("https://faß.de/hook", "https://xn--fa-hia.de/hook"),
        ("https://ß.example/", "https://xn--zca.example/"),
        ("https://\uff23\uff32\uff2d.example/", "https://crm.example/"),  # full-width CRM
        # the path and query as an HTTP client sends them: what is stored is what is sent
        ("https://crm.example.com/päth?q=ä", "https://crm.example.com/p%C3%A4th?q=%C3%A4"),
        ("https://crm.example.com/a%2Fb?x=%zz", "https://crm.example.com/a%2Fb?x=%25zz"),
        ('https://crm.example.com/a"b<c>', "https://crm.example.com/a%22b%3Cc%3E"),
    ],
)
def test_accepted_urls_and_their_canonical_form(url: str, canonical: str) -> None:
    assert check_url(url, allow_loopback_http=False, allow_private=False) == canonical


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://crm.example.com/x", "must be https"),
        ("ftp://crm.example.com/x", "https"),
        ("file:///etc/passwd", "https"),
        ("crm.example.com/x", "https"),
        ("https://user:pw@crm.example.com/x", "user name"),
        ("https://user@crm.example.com/x", "user name"),
        ("https:///x", "no host"),
        ("https://crm.example.com/x#frag", "fragment"),
        ("https://crm.example.com:99999/x", "not a URL"),
        ("https://crm.example.com:0/x", "port 0"),
        ("https://crm example.com/x", "space"),
        ("https://crm.example.com/x\n", "control"),
        ("https://localhost/x", "loopback"),
        ("http://localhost:8080/x", "loopback"),
        ("https://api.localhost/x", "loopback"),
        ("https://127.0.0.1/x", "loopback"),
        ("https://[::1]/x", "loopback"),
        ("https://10.0.0.5/x", "not a public address"),
        ("https://169.254.169.254/latest/meta-data", "not a public address"),
        ("https://[::ffff:169.254.169.254]/x", "not a public address"),
        ("https://[fe80::1%25eth0]/x", "zone"),
        ("https://ex%41mple.com/x", "may not hold '%'"),
        ("https://[2606:2800:21f::1]evil.example/x", r"\[address\] with at most a :port"),
        ("https://evil.example[2606:2800:21f::1]/x", r"\[address\]"),
        ("https://a\u200db.example/x", "domain name"),  # a zero-width joiner out of context
        ("https://\u200d.example/x", "domain name"),
        ("https://crm.example.com/a\ud800b", "lone surrogates"),
        ("https://crm\udcff.example/x", "lone surrogates"),
        ("https://crm.example.com/x?q=\udfff", "lone surrogates"),
        ("https://ip6-localhost/x", "loopback"),
        ("https://ip6-loopback/x", "loopback"),
        ("https://2130706433/x", "number"),
        ("https://127.1/x", "number"),
        ("https://0x7f.0x0.0x0.0x1/x", "number"),
        ("https://-bad-.example.com/x", "domain name"),
        ("https://a..example.com/x", "domain name"),
        ("https://" + "a" * 64 + ".example.com/x", "domain name"),
        ("https://crm.example.com/" + "x" * MAX_URL_LENGTH, "longer than"),
    ],
)
def test_refused_urls_say_why(url: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        check_url(url, allow_loopback_http=False, allow_private=False)


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("http://localhost:8080/hook", "http://localhost:8080/hook"),
        ("http://127.0.0.1:9000", "http://127.0.0.1:9000/"),
        ("http://[::1]:9000/x", "http://[::1]:9000/x"),
        ("https://localhost/x", "https://localhost/x"),
    ],
)
def test_loopback_hosts_where_allowed(url: str, canonical: str) -> None:
    assert check_url(url, allow_loopback_http=True, allow_private=False) == canonical


@pytest.mark.parametrize(
    "url", ["http://10.0.0.5/x", "http://crm.example.com/x", "http://169.254.169.254/"]
)
def test_plain_http_stays_refused_off_loopback_whatever_is_allowed(url: str) -> None:
    with pytest.raises(ValueError):
        check_url(url, allow_loopback_http=True, allow_private=True)


def test_private_addresses_where_allowed() -> None:
    assert (
        check_url("https://10.0.0.5/x", allow_loopback_http=False, allow_private=True)
        == "https://10.0.0.5/x"
    )


@given(st.text(max_size=300))
def test_any_text_is_accepted_canonically_or_refused_with_a_reason(text: str) -> None:
    try:
        canonical = check_url(text, allow_loopback_http=True, allow_private=True)
    except ValueError as exc:
        assert str(exc)
        return
    assert canonical.startswith(("https://", "http://"))
    assert check_url(canonical, allow_loopback_http=True, allow_private=True) == canonical


@given(st.ip_addresses())
def test_a_url_to_an_address_is_accepted_only_if_the_address_is(ip: IPAddress) -> None:
    host = f"[{ip}]" if ip.version == 6 else str(ip)
    try:
        check_url(f"https://{host}/x", allow_loopback_http=False, allow_private=False)
    except ValueError:
        assert not address_allowed(ip, **OFF)
    else:
        assert address_allowed(ip, **OFF)


_SCHEMES = st.sampled_from(["https", "http", "HTTPS", "ftp"])
_IP_HOSTS = st.ip_addresses().map(lambda ip: f"[{ip}]" if ip.version == 6 else str(ip))
#: labels of letters, digits, hyphens, joiners and lone surrogates (Cs): text a client may send
_LABELS = st.text(
    st.characters(categories=["Ll", "Lu", "Lo", "Nd", "Pd", "Cs", "Cf"]), min_size=1, max_size=12
)
_NAME_HOSTS = st.lists(_LABELS, min_size=1, max_size=3).map(".".join)
_HOSTS = st.sampled_from(["crm.example.com", "localhost", "faß.de"]) | _IP_HOSTS | _NAME_HOSTS
_PORTS = st.none() | st.integers(min_value=0, max_value=70000)
#: paths without the characters that end a path (?, #) or start an escape (%)
_PATHS = st.text(
    st.characters(exclude_categories=["Cc"], exclude_characters="?#%")
    | st.characters(categories=["Cs"]),
    max_size=30,
).map(lambda text: "/" + text)


@given(_SCHEMES, _HOSTS, _PORTS, _PATHS)
def test_a_url_built_from_its_parts_is_kept_whole_or_refused(
    scheme: str, host: str, port: int | None, path: str
) -> None:
    url = f"{scheme}://{host}{'' if port is None else f':{port}'}{path}"
    try:
        canonical = check_url(url, allow_loopback_http=True, allow_private=True)
    except ValueError as exc:
        assert str(exc)
        return
    url.encode("utf-8")  # accepted text has no lone surrogate
    canonical.encode("ascii")  # the stored form is the form sent, escapes and all
    parts = urlsplit(canonical)
    assert parts.scheme == scheme.lower()
    assert parts.port == (None if port in (None, 443 if parts.scheme == "https" else 80) else port)
    assert unquote(parts.path) == path
    assert check_url(canonical, allow_loopback_http=True, allow_private=True) == canonical
