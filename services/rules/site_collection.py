"""What a website may record from a visitor's browser (pure): the origins a site is registered
with, the choices a banner sends, the page URL kept as evidence, and the Global Privacy
Control rule.

Every text is length-checked before it is parsed. The HTTP side is services/api/collect.py
and services/api/sites.py.

Design: docs/developers/design/websites.md
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote, urlsplit, urlunsplit

from schemas.events import EMAIL_LIKE_RE
from services.rules.catalogue import Catalogue
from services.rules.decisions import Decision
from services.rules.free_text import contains_phone_number

MAX_ORIGIN: Final = 255
MAX_ORIGINS: Final = 20
MAX_PAGE_URL: Final = 2048
#: decisions after which a banner asks again: never asked, lapsed, or outdated by a material
#: change of the privacy notice (and a sign-up not yet confirmed, which a banner never makes)
ASK_AGAIN: Final = frozenset(
    {"no_consent", "unknown_subject", "consent_expired", "consent_outdated", "confirmation_pending"}
)
#: the subject id of a browser: this prefix and the device id the banner keeps in its cookie
DEVICE_PREFIX: Final = "device:"
_ORIGIN_FORM: Final = "an origin such as https://www.example.com (scheme, host and port only)"
_HOST_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-.")


def loopback_host(host: str) -> bool:
    """localhost or a loopback address (127.0.0.0/8, ::1): only this machine reaches it."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _host_problem(host: str) -> str | None:
    if host.startswith("["):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return "has an IPv6 host that is not an address"
        return None
    labels = host.split(".")
    if not set(host) <= _HOST_CHARS or any(not 1 <= len(x) <= 63 for x in labels):
        return "has a host that is not a DNS name (ASCII letters, digits, - and dots)"
    if any(x.startswith("-") or x.endswith("-") for x in labels):
        return "has a host label that starts or ends with -"
    return None


def origin_problem(value: str, *, http_loopback: bool) -> str | None:
    """Why `value` is not a web origin a site may register, or None. https only; http only for
    a loopback host and only when `http_loopback` (the ledger's public URL is itself loopback:
    a development setup). No path, query, fragment or user info: an Origin header has none."""
    if not 1 <= len(value) <= MAX_ORIGIN:
        return f"is {len(value)} characters long; must be {_ORIGIN_FORM}, at most {MAX_ORIGIN}"
    try:
        url = urlsplit(value)
        port = url.port
    except ValueError:
        return f"must be {_ORIGIN_FORM}"
    if url.path or url.query or url.fragment or "?" in value or "#" in value:
        return f"must have no path, query or fragment (not even a trailing /): {_ORIGIN_FORM}"
    if url.username is not None or url.password is not None or not url.netloc:
        return f"must be {_ORIGIN_FORM}"
    host = url.netloc.rsplit(":", 1)[0] if port is not None else url.netloc
    host = host.lower()
    if url.scheme not in ("https", "http"):
        return f"must be {_ORIGIN_FORM}"
    if (problem := _host_problem(host)) is not None:
        return problem
    if url.scheme == "http":
        if not loopback_host(host):
            return "must be https (plain http only for a loopback host in development)"
        if not http_loopback:
            return (
                "is a plain-http loopback origin, accepted only where the ledger's public URL"
                " (LEDGER_PUBLIC_URL) is loopback too"
            )
    return None


def canonical_origin(value: str) -> str:
    """The spelling a browser sends in Origin: lowercase, without the scheme's default port.
    Only for a value `origin_problem` accepts."""
    url = urlsplit(value)
    default = {"https": 443, "http": 80}[url.scheme.lower()]
    host = url.netloc.lower().rsplit(":", 1)[0] if url.port is not None else url.netloc.lower()
    netloc = host if url.port in (None, default) else f"{host}:{url.port}"
    return f"{url.scheme.lower()}://{netloc}"


def default_site_purposes(catalogue: Catalogue) -> tuple[str, ...]:
    """The purposes a site collects when its registration names none: those the catalogue
    marks browser_collectable (which implies the `web` channel)."""
    return tuple(p.id for p in catalogue.browser_collectable())


def site_purpose_problem(pid: str, catalogue: Catalogue) -> str | None:
    """Why a site may not collect `pid`, or None."""
    purpose = catalogue.get(pid)
    if purpose is None:
        return f"{pid!r} is not a purpose of the catalogue"
    if not purpose.browser_collectable:
        collectable = ", ".join(default_site_purposes(catalogue)) or "none"
        return (
            f"{pid!r} is not marked browser_collectable in the catalogue; collectable:"
            f" {collectable}"
        )
    return None


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """A refused field: its name (`choices.<purpose>`) and why."""

    field: str
    detail: str


def parse_choices(
    value: object, site_purposes: Sequence[str], catalogue: Catalogue
) -> tuple[dict[str, bool], list[FieldProblem]]:
    """The banner's `choices` object: purpose -> true (grant) or false (withdraw). Every key
    must be a purpose the site collects and every value a boolean; each problem names its
    `choices.<purpose>`. Refused entirely if any one is wrong (the caller records nothing)."""
    if not isinstance(value, Mapping):
        return {}, [FieldProblem("choices", "must be an object of purpose: true or false")]
    if len(value) > len(catalogue.ids):
        return {}, [FieldProblem("choices", f"names {len(value)} purposes; too many")]
    chosen: dict[str, bool] = {}
    problems: list[FieldProblem] = []
    for pid, choice in value.items():
        name = f"choices.{pid[:64]}"
        if catalogue.get(pid) is None:
            problems.append(FieldProblem(name, "is not a purpose of the catalogue"))
        elif pid not in site_purposes:
            collected = ", ".join(site_purposes)
            problems.append(FieldProblem(name, f"is not collected by this site ({collected})"))
        elif not isinstance(choice, bool):
            problems.append(FieldProblem(name, f"must be true or false, not {choice!r:.40}"))
        else:
            chosen[pid] = choice
    return chosen, problems


def gpc_withdrawals(
    chosen: Mapping[str, bool],
    site_purposes: Iterable[str],
    catalogue: Catalogue,
    *,
    gpc: bool,
    undecided: Collection[str],
) -> list[str]:
    """The purposes to record a GPC withdrawal for: with `Sec-GPC: 1`, each direct-marketing
    purpose the site collects that the request makes no explicit choice about (an explicit
    choice is recorded as given) and that has no choice standing yet (`undecided`: GPC never
    undoes the visitor's own earlier grant). In the site's order."""
    if not gpc:
        return []
    return [
        pid
        for pid in site_purposes
        if pid not in chosen
        and pid in undecided
        and (p := catalogue.get(pid)) is not None
        and p.direct_marketing
    ]


def banner_choice(decision: Decision) -> bool | None:
    """What a banner shows for a purpose: true where it is allowed, null where it should ask,
    false where the visitor (or GPC, an objection, an erasure) refused it."""
    if decision.allowed:
        return True
    return None if decision.reason in ASK_AGAIN else False


def page_url_problem(value: str, origin: str) -> str | None:
    """Why a banner's `page_url` is refused, or None: an http(s) URL of the request's origin."""
    if not 1 <= len(value) <= MAX_PAGE_URL:
        return f"is {len(value)} characters long; must be a URL of at most {MAX_PAGE_URL}"
    try:
        url = urlsplit(value)
        _ = url.port
    except ValueError:
        return "must be the URL of the page the banner is on"
    if url.scheme not in ("http", "https") or not url.netloc:
        return "must be the http(s) URL of the page the banner is on"
    if origin_problem(f"{url.scheme}://{url.netloc}", http_loopback=True) is not None:
        return "must be the http(s) URL of the page the banner is on"
    if canonical_origin(f"{url.scheme}://{url.netloc}") != origin:
        return f"must be a page of the request's origin {origin}"
    return None


def cut_page_url(value: str) -> str:
    """The page URL as kept: scheme, host and path only. A query string, a fragment or `;`
    parameters can carry personal data (an e-mail address, a session) and are never stored;
    a path that looks like it holds an e-mail address or a phone number is dropped whole."""
    url = urlsplit(value)
    path = "/".join(segment.split(";", 1)[0] for segment in (url.path or "/").split("/"))
    readable = unquote(path).replace("/", " ")
    if "@" in readable or EMAIL_LIKE_RE.search(readable) or contains_phone_number(readable):
        path = "/"
    return urlunsplit((url.scheme.lower(), url.netloc.lower(), path or "/", "", ""))
