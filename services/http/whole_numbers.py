"""Whole-number query fields. `str.isdigit()` alone accepts digits `int()` refuses ("²") and
numbers too long to parse, which would turn bad input into a 500: body.whole_number checks."""

from __future__ import annotations

from services.http.body import Fields, whole_number


def whole_number_field(f: Fields, name: str, default: int, low: int, high: int) -> int:
    """The query field `name` as a whole number from `low` to `high`, or `default` when absent;
    anything else is an error named after the field."""
    raw = f.raw(name)
    if raw is None:
        return default
    number = whole_number(raw) if isinstance(raw, str) else None
    if number is None or not low <= number <= high:
        f.error(name, f"must be a whole number from {low} to {high}")
        return default
    return number
