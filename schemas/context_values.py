"""The values of an event's `context` (schemas/events.py `Context`): the client's network
truncated from its address, the user agent cut to its limit, and why a value an API caller
asserts is refused. Pure; every text is length-checked before it is parsed.

Design: docs/developers/design/event-context.md
"""

from __future__ import annotations

import ipaddress
import re
from typing import Final

from schemas.events import LANGUAGES

#: the prefix lengths a client address is truncated to: what remains names a network, not a host
IPV4_PREFIX: Final = 24
IPV6_PREFIX: Final = 48
MAX_USER_AGENT: Final = 256
#: the languages a page is shown in (schemas/events.py, one list for links, sign-ups and pages)
CONTEXT_LANGUAGES: Final = LANGUAGES
#: the longest text `ipaddress` is asked to parse (an IPv6 address with a zone, or a network)
MAX_ADDRESS_TEXT: Final = 64
MAX_PAGE: Final = 64
MAX_PAGE_VERSION: Final = 64
PAGE_RE: Final = re.compile(r"[a-z][a-z0-9_-]*")
PAGE_VERSION_RE: Final = re.compile(r"[A-Za-z0-9._:-]+")
_NETWORK_FORM: Final = (
    "an IPv4 /24 or IPv6 /48 network with its host bits zero, e.g. 203.0.113.0/24 or"
    " 2001:db8:1::/48"
)


def truncated_network(host: str) -> str | None:
    """The /24 (IPv4) or /48 (IPv6) network of a client address, or None when `host` is not
    an IP address (a test client, a Unix socket). An IPv4-mapped IPv6 address counts as IPv4."""
    if not host or len(host) > MAX_ADDRESS_TEXT:
        return None
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        address = embedded_ipv4(address) or address
    prefix = IPV4_PREFIX if address.version == 4 else IPV6_PREFIX
    return str(ipaddress.ip_network((address, prefix), strict=False))


#: 6to4 (RFC 3056): a /48 of it is one whole IPv4 address
_SIXTOFOUR: Final = ipaddress.IPv6Network("2002::/16")
#: NAT64's well-known prefix (RFC 6052): the last 32 bits are the client's IPv4 address
_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries whole (IPv4-mapped, 6to4, Teredo's client,
    NAT64), whose /48 would keep it: such an address is truncated as that IPv4 address."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def cut_user_agent(text: str | None) -> str | None:
    """A captured User-Agent as stored: at most MAX_USER_AGENT characters, without the
    characters an event cannot carry (U+0000, lone surrogates); None when nothing is left."""
    if not text:
        return None
    kept = text[:MAX_USER_AGENT].replace("\x00", "")
    kept = kept.encode("utf-8", "ignore").decode("utf-8").strip()
    return kept or None


def client_address_problem(value: str) -> str | None:
    """Why an asserted `client_address` is refused, or None: only an already truncated network
    is accepted, never a full address."""
    if not 1 <= len(value) <= MAX_ADDRESS_TEXT:
        return f"is {len(value)} characters long; must be {_NETWORK_FORM}"
    if "/" not in value:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            return f"must be {_NETWORK_FORM}"
        return (
            f"is a full client address, which the ledger never stores; send its network"
            f" instead: {_NETWORK_FORM}"
        )
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError:
        return f"must be {_NETWORK_FORM}"
    wanted = IPV4_PREFIX if network.version == 4 else IPV6_PREFIX
    if network.prefixlen != wanted:
        return f"is a /{network.prefixlen} network; must be {_NETWORK_FORM}"
    if isinstance(network, ipaddress.IPv6Network) and network.subnet_of(_SIXTOFOUR):
        return (
            "is a 6to4 network, whose /48 holds the client's whole IPv4 address; send that"
            " address's IPv4 /24 instead"
        )
    return None


def canonical_network(value: str) -> str:
    """The one spelling of an accepted network (`2001:DB8:1:0::/48` is `2001:db8:1::/48`)."""
    return str(ipaddress.ip_network(value, strict=True))


def user_agent_problem(value: str) -> str | None:
    """Why an asserted `user_agent` is refused, or None: a caller sends it within the limit
    (the ledger cuts only what it captures itself)."""
    if not value.strip() or len(value) > MAX_USER_AGENT:
        return f"is {len(value)} characters long; must be 1-{MAX_USER_AGENT}"
    return None


def page_problem(value: str) -> str | None:
    if not 1 <= len(value) <= MAX_PAGE or not PAGE_RE.fullmatch(value):
        return f"must be 1-{MAX_PAGE} characters: a lowercase letter, then a-z 0-9 _ -"
    return None


def page_version_problem(value: str) -> str | None:
    if not 1 <= len(value) <= MAX_PAGE_VERSION or not PAGE_VERSION_RE.fullmatch(value):
        return f"must be 1-{MAX_PAGE_VERSION} characters from letters, digits and . _ : -"
    return None
