"""The languages the public pages speak, and which one a request gets (pure).

Design: docs/developers/design/public-pages.md
"""

from __future__ import annotations

import re
from typing import Final

# the pages' languages (ISO 639-1, in the switch's order) are one list with the links' and the
# sign-ups' own: schemas/events.py
from schemas.events import LANGUAGES as LANGUAGES

#: what each language is called in itself: the words of the language switch
NATIVE_NAMES: Final = {"fi": "Suomi", "sv": "Svenska", "en": "English"}
#: the longest Accept-Language header read (browsers send well under 200 characters)
MAX_ACCEPT_LANGUAGE: Final = 512
#: the most comma-separated ranges of it read
MAX_RANGES: Final = 24
_RANGE_RE: Final = re.compile(r"[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*|\*")
_Q_RE: Final = re.compile(r"q=(0(?:\.\d{0,3})?|1(?:\.0{0,3})?)")


def language_problem(value: object) -> str | None:
    """Why `value` is not a language of the pages (None: it is)."""
    if not isinstance(value, str) or value not in LANGUAGES:
        return f"must be one of {', '.join(LANGUAGES)}"
    return None


def from_accept_language(header: str) -> str | None:
    """The language of the pages a browser prefers most (RFC 9110 12.5.4), else None.

    A range matches by its primary subtag (`sv-FI` is `sv`); q-values order the ranges, ties
    keep the header's order, and `q=0` on a bare language (`sv;q=0`) excludes it. `*` stands
    for no language in particular: it picks nothing, so the ledger's default applies. A header
    longer than MAX_ACCEPT_LANGUAGE characters is ignored; only its first MAX_RANGES ranges
    are read.
    """
    if len(header) > MAX_ACCEPT_LANGUAGE:
        return None
    weights: dict[str, float] = {}
    excluded: set[str] = set()
    for part in header.split(",", MAX_RANGES)[:MAX_RANGES]:
        tag, _, params = part.strip().partition(";")
        tag = tag.strip()
        if not _RANGE_RE.fullmatch(tag):
            continue
        quality = _quality(params)
        if quality is None:
            continue
        primary = tag.split("-")[0].lower()
        if primary not in LANGUAGES:
            continue
        if quality == 0:
            if tag.lower() == primary:  # `sv-FI;q=0` refuses one variant, not Swedish
                excluded.add(primary)
        elif primary not in weights or quality > weights[primary]:
            weights[primary] = quality
    ranked = [(-q, i, lang) for i, (lang, q) in enumerate(weights.items()) if lang not in excluded]
    return min(ranked)[2] if ranked else None


def _quality(params: str) -> float | None:
    """The range's q-value (1 when it has none), None when its parameters are malformed."""
    params = params.strip()
    if not params:
        return 1.0
    match = _Q_RE.fullmatch(params.replace(" ", ""))
    return float(match.group(1)) if match else None


def choose_language(
    *, asked: str | None, sealed: str | None, accept_language: str | None, default: str
) -> str:
    """The language of a page: the one the page's own switch asked for (`?lang=`), else the one
    sealed in its link, else the browser's preference, else the ledger's default. A value that
    is not a language of the pages counts as not given."""
    for candidate in (asked, sealed):
        if candidate is not None and language_problem(candidate) is None:
            return candidate
    preferred = from_accept_language(accept_language) if accept_language else None
    return preferred or default
