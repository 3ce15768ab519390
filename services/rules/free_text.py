"""Whether free text that goes into an event carries a phone number: events are kept forever
and erasure cannot reach their free text.

Design: docs/developers/design/identities.md
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

#: fewest digits a run needs to be taken for a phone number
MIN_DIGITS: Final = 7
#: most digits of one E.164 number, for numbers written without separators
MAX_E164_DIGITS: Final = 15

_DAY: Final = r"(?:3[01]|[12]\d|0?[1-9])"
_MONTH: Final = r"(?:1[0-2]|0?[1-9])"
_YEAR: Final = r"(?:19|20)\d\d"
_HOUR: Final = r"(?:2[0-3]|[01]?\d)"
#: dates, year ranges and clock times: every branch has a bounded length, so each start
#: position costs a bounded number of steps
_CALENDAR: Final = re.compile(
    # a date or time stands on its own: not inside 000-2000-2000, a chain of digit groups
    r"(?<!\d)(?<!\d[-./])(?:"
    rf"{_YEAR}([-./]){_MONTH}\1{_DAY}"
    rf"|{_DAY}([-./]){_MONTH}\2{_YEAR}"
    rf"|{_MONTH}/{_DAY}/{_YEAR}"
    rf"|{_YEAR} ?[-/\u2013] ?{_YEAR}"
    rf"|{_HOUR}:[0-5]\d(?::[0-5]\d(?:[.,]\d{{1,9}})?)?(?:Z|[+-]{_HOUR}(?::?[0-5]\d)?)?"
    r")(?!\d)(?![-./]\d)"
    # 12.30 as a time only on its own: not in 040.12.34.567, nor after "(040) " or "040 - "
    rf"|(?<![\d.])(?<![\d)\-] ){_HOUR}\.[0-5]\d(?![\d.])"
)
_RUN: Final = re.compile(r"[\d+()./ \-\u2010-\u2015\u2212]+")
_DIGITS: Final = re.compile(r"\d+")
#: what stands in for a date or time: outside the run alphabet and not part of a word
_MASK: Final = "\x00"
_JOINERS: Final = frozenset("-/\u2010\u2011\u2012\u2013\u2014\u2015\u2212")


def _word(char: str) -> bool:
    return char.isalpha() or char in "_#"


def _glued(text: str, start: int, end: int) -> bool:
    """Whether the run text[start:end] continues a word (an id, not a number to dial)."""
    first, last = text[start], text[end - 1]
    before = start > 0 and _word(text[start - 1]) and (first.isdigit() or first in _JOINERS)
    after = (
        end < len(text)
        and (text[end].isalpha() or text[end] == "_")
        and (last.isdigit() or last in _JOINERS)
    )
    return before or after


def phone_like_run(run: str) -> bool:
    """Rules 4-7 of the module docstring for one run (not glued to a word)."""
    groups = [(m.start(), m.group()) for m in _DIGITS.finditer(run)]
    if sum(len(g) for _, g in groups) < MIN_DIGITS:
        return False
    first_at, first = groups[0]
    lead = run[:first_at]
    if len(groups) == 1:
        return len(first) <= MAX_E164_DIGITS and (lead.endswith("+") or first.startswith("0"))
    if len(groups) == 2:
        (_, a), (b_at, _) = groups
        if run[first_at + len(a) : b_at] == ".":
            return False
    return "+" in lead or "(" in lead or first.startswith("0") or len(groups) >= 3


def contains_phone_number(text: str) -> bool:
    """Whether `text` contains what the module docstring calls a phone number."""
    normal = _CALENDAR.sub(_MASK, unicodedata.normalize("NFKC", text))
    for match in _RUN.finditer(normal):
        start, end = match.span()
        if not _glued(normal, start, end) and phone_like_run(match.group()):
            return True
    return False
