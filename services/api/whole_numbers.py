"""Whole numbers in query strings and headers. `str.isdigit()` alone accepts digits `int()`
refuses ("²") and numbers too long to parse, which would turn bad input into a 500."""

from __future__ import annotations

from typing import Final

from services.api.body import Fields

#: more digits than any limit, offset or length the API accepts could need
MAX_DIGITS: Final = 18


def is_small_whole_number(raw: str) -> bool:
    """ASCII digits only, at most MAX_DIGITS of them: safe to pass to int()."""
    return raw.isascii() and raw.isdigit() and len(raw) <= MAX_DIGITS


def whole_number_field(f: Fields, name: str, default: int, low: int, high: int) -> int:
    """The query field `name` as a whole number from `low` to `high`, or `default` when absent;
    anything else is an error named after the field."""
    raw = f.raw(name)
    if raw is None:
        return default
    if not (isinstance(raw, str) and is_small_whole_number(raw) and low <= int(raw) <= high):
        f.error(name, f"must be a whole number from {low} to {high}")
        return default
    return int(raw)
