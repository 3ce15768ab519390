"""Whether free text that goes into an event carries a phone number.

Events are kept forever and erasure cannot reach their free text (`reason`, `evidence`, a
rights request's `reference`, ...), so a phone number typed there would outlive the person's
erasure. The rule, applied after Unicode NFKC (full-width digits and signs count):

1. Dates (2026-01-31, 31.1.2026, 01/31/2026), year ranges (2025-2026) and clock times (12:00,
   12:00:00.123+02:00, and 12.30 where no other digits come right before it) are set aside
   first: they are not numbers to dial.
2. What remains is cut into runs of digits, spaces and `+ ( ) - . /` (and Unicode dashes).
3. A run is left alone when it is glued to a word: a letter, `_` or `#` right before it with
   the run starting with a digit, `-` or `/` (INC-20260131-0042, #1234567, ABC1234567), or a
   letter or `_` right after a run ending in a digit, `-` or `/` (a UUID's all-digit stretch).
4. A run with fewer than 7 digits is no phone number (versions such as 2026.1, postal codes).
5. One group of digits is a phone number when it has at most 15 digits (E.164) and starts with
   `0` or follows a `+` (0401234567, +358401234567); other bare numbers (order 12345678) pass.
6. Two groups joined by a single `.` are a decimal or a version (3.14159265).
7. Otherwise it is a phone number when it starts with `+`, `(` or `0`, or has three or more
   groups (+358 40 123 4567, (040) 123 4567, 040-1234567, 555-123-4567).

Known misses: a two-group number without `0`, `+` or `(` (555 1234567), a number glued to a
word (tel0401234567), a number whose groups read as a date, a year range or a time
(040 2025 - 2026). Known refusals of harmless text: three or more space-separated numbers
with 7 or more digits in all (101 102 103 4), amounts written with spaces (1 234 567), IPv4
addresses (personal data too). Separate such numbers with commas.

Every step is one pass of a regular expression without nested repetition, or a loop over a
run's characters, so the cost is linear in the text; callers bound the length first.
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
