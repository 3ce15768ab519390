"""Which URLs a webhook may be sent to, and which addresses a delivery may connect to: https
only, no credentials, and no loopback, private, link-local, shared, multicast, reserved or
otherwise internal address (nor one wrapped in IPv6), save where LEDGER_WEBHOOK_ALLOW_LOOPBACK
or LEDGER_WEBHOOK_ALLOW_PRIVATE allows it. Pure: the dispatcher resolves, this decides.

Design: docs/developers/design/webhooks.md
"""

from __future__ import annotations

import ipaddress
import re
from typing import Final
from urllib.parse import quote, urlsplit, urlunsplit

import idna

from schemas.event_limits import unstorable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_URL_LENGTH: Final = 2048
_MAX_HOST_LENGTH: Final = 253
LOOPBACK_NAMES: Final = frozenset(
    {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}
)

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network

LOOPBACK: Final = (_V4("127.0.0.0/8"), _V6("::1/128"))
PRIVATE: Final = (
    _V4("10.0.0.0/8"),
    _V4("172.16.0.0/12"),
    _V4("192.168.0.0/16"),
    _V6("fc00::/7"),  # unique local
)
#: refused whatever the settings say
REFUSED: Final = (
    _V4("0.0.0.0/8"),  # this network, unspecified
    _V4("100.64.0.0/10"),  # shared address space (carrier-grade NAT)
    _V4("169.254.0.0/16"),  # link-local (cloud metadata services)
    _V4("192.0.0.0/24"),  # IETF protocol assignments
    _V4("192.0.2.0/24"),  # documentation
    _V4("192.88.99.0/24"),  # 6to4 relay anycast
    _V4("198.18.0.0/15"),  # benchmarking
    _V4("198.51.100.0/24"),  # documentation
    _V4("203.0.113.0/24"),  # documentation
    _V4("224.0.0.0/4"),  # multicast
    _V4("240.0.0.0/4"),  # reserved, broadcast
    _V6("::/96"),  # unspecified, IPv4-compatible (deprecated)
    _V6("::ffff:0:0:0/96"),  # IPv4-translated
    _V6("64:ff9b:1::/48"),  # local-use NAT64
    _V6("100::/64"),  # discard
    _V6("2001::/23"),  # IETF protocol assignments, Teredo
    _V6("2001:db8::/32"),  # documentation
    _V6("3fff::/20"),  # documentation
    _V6("5f00::/16"),  # segment routing
    _V6("fe80::/10"),  # link-local
    _V6("fec0::/10"),  # site-local (deprecated)
    _V6("ff00::/8"),  # multicast
)
_GLOBAL_UNICAST_V6: Final = _V6("2000::/3")
_NAT64: Final = _V6("64:ff9b::/96")
_IPV4_MAPPED: Final = _V6("::ffff:0:0/96")

#: a host name's label: letters, digits and hyphens, not at either end (after IDNA)
_LABEL: Final = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
#: a last label a resolver may read as an IPv4 number (127.1, 0x7f.1, 2130706433)
_NUMERIC_LABEL: Final = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)")
_CONTROL_OR_SPACE: Final = re.compile(r"[\x00-\x20\x7f-\x9f]")
#: a bracketed IPv6 host is the whole netloc but for a port: nothing may follow `]`
_BRACKETED: Final = re.compile(r"\[[^\[\]]*\](?::[0-9]*)?")
#: a `%` that does not start a percent-escape
_LONE_PERCENT: Final = re.compile(r"%(?![0-9A-Fa-f]{2})")
#: what RFC 3986 lets a path hold unescaped (besides letters and digits); a query adds `?`
_PATH_SAFE: Final = "/:@!$&'()*+,;=-._~%"


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (IPv4-mapped, 6to4, NAT64), if any."""
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip in _IPV4_MAPPED:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_allowed(ip: IPAddress, *, allow_loopback: bool, allow_private: bool) -> bool:
    """Whether a delivery may connect to `ip`."""
    inner = embedded_ipv4(ip)
    if inner is not None:
        return address_allowed(inner, allow_loopback=allow_loopback, allow_private=allow_private)
    if any(ip in net for net in LOOPBACK):
        return allow_loopback
    if any(ip in net for net in PRIVATE):
        return allow_private
    if isinstance(ip, ipaddress.IPv6Address) and ip not in _GLOBAL_UNICAST_V6:
        return False
    return not any(ip in net for net in REFUSED)


def _host(hostname: str, bracketed: bool) -> str | IPAddress:
    """The URL's host as an address or a lowercase ASCII name; ValueError saying why not."""
    if "%" in hostname:
        if bracketed:
            raise ValueError("the host may not carry an IPv6 zone")
        raise ValueError("the host may not hold '%' (write a name as itself, not percent-encoded)")
    try:
        return ipaddress.ip_address(hostname)
    except ValueError:
        pass
    try:
        # IDNA 2008 with the UTS 46 mapping: faß.de stays itself, not fass.de as IDNA 2003 has it
        name = idna.encode(hostname, uts46=True).decode("ascii").lower()
    except (idna.IDNAError, UnicodeError):
        raise ValueError("the host is not a valid domain name") from None
    name = name.removesuffix(".")
    labels = name.split(".")
    if len(name) > _MAX_HOST_LENGTH or not all(_LABEL.fullmatch(label) for label in labels):
        raise ValueError("the host is not a valid domain name")
    if _NUMERIC_LABEL.fullmatch(labels[-1]):
        raise ValueError("the host is a number: write an IP address as a.b.c.d or [v6]")
    return name


def is_loopback_host(host: str | IPAddress) -> bool:
    if isinstance(host, str):
        return host in LOOPBACK_NAMES or host.endswith(".localhost")
    return any(host in net for net in LOOPBACK)


def _escaped(text: str, safe: str) -> str:
    """`text` percent-encoded (UTF-8) where RFC 3986 wants it, existing escapes kept: the form
    an HTTP client sends, so what is stored is what is sent."""
    return quote(_LONE_PERCENT.sub("%25", text), safe=safe)


def check_url(url: str, *, allow_loopback_http: bool, allow_private: bool) -> str:
    """The canonical form of a webhook URL, or ValueError with the reason it is refused."""
    if len(url) > MAX_URL_LENGTH:
        raise ValueError(f"is longer than {MAX_URL_LENGTH} characters")
    if (problem := unstorable(url)) is not None:
        raise ValueError(problem)
    if _CONTROL_OR_SPACE.search(url):
        raise ValueError("has a space or a control character")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValueError("is not a URL (https://host[:port]/path)") from None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise ValueError("must be an https URL")
    if "@" in parts.netloc:
        raise ValueError("may not carry a user name or password")
    if not parts.hostname:
        raise ValueError("has no host")
    bracketed = "[" in parts.netloc or "]" in parts.netloc
    if bracketed and not _BRACKETED.fullmatch(parts.netloc):
        raise ValueError("an IPv6 host is [address] with at most a :port after it")
    if port == 0:
        raise ValueError("port 0 is not a port")
    if parts.fragment or url.endswith("#"):
        raise ValueError("may not have a fragment (#...)")
    host = _host(parts.hostname, bracketed)
    if is_loopback_host(host):
        if not allow_loopback_http:
            raise ValueError("may not point at a loopback host")
    elif scheme == "http":
        raise ValueError("must be https (plain http only to a loopback host, where allowed)")
    if not isinstance(host, str) and not address_allowed(
        host, allow_loopback=allow_loopback_http, allow_private=allow_private
    ):
        raise ValueError(f"may not point at {host}: not a public address")
    netloc = f"[{host.compressed}]" if isinstance(host, ipaddress.IPv6Address) else str(host)
    if port is not None and port != (443 if scheme == "https" else 80):
        netloc += f":{port}"
    path = _escaped(parts.path or "/", _PATH_SAFE)
    return urlunsplit((scheme, netloc, path, _escaped(parts.query, _PATH_SAFE + "?"), ""))
