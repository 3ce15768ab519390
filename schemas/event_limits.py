"""Limits every event keeps that its Avro schema cannot state.

An Avro string may hold U+0000, a timestamp any instant Python can represent and an int any
32-bit value; PostgreSQL text cannot store U+0000, calendar arithmetic on a deadline or a
retention period overflows near year 9999, and a deadline extension is 1 or 2 months. The
codec refuses to encode or decode an event outside these limits, so an event in the log is
one the projector can apply: a record that breaks them is kept in rejected_records instead
of stopping the projector on every retry.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, Final

#: the instants an event may carry (occurred_at, recorded_at and every time in its data)
EARLIEST: Final = datetime(1900, 1, 1, tzinfo=UTC)
LATEST: Final = datetime(9000, 1, 1, tzinfo=UTC)
#: whole-number data fields and the values their schema's documentation allows
INT_RANGES: Final[Mapping[str, tuple[int, int]]] = {"months": (1, 2)}


def _leaves(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _leaves(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _leaves(item, f"{path}[{index}]")
    else:
        yield path, value


def limit_problem(event_type: str, record: Mapping[str, Any]) -> str | None:
    """Why the record of an `event_type` event breaks a limit, or None when it keeps them all."""
    for path, value in _leaves(record, ""):
        name = path.rsplit(".", 1)[-1]
        if isinstance(value, str) and "\x00" in value:
            return f"{event_type}.{path} contains U+0000, which PostgreSQL text cannot store"
        aware = isinstance(value, datetime) and value.utcoffset() is not None
        if aware and not EARLIEST <= value < LATEST:
            return (
                f"{event_type}.{path} is {value.isoformat()}; times must lie from"
                f" {EARLIEST.date()} up to {LATEST.date()}"
            )
        if name in INT_RANGES and isinstance(value, int) and not isinstance(value, bool):
            low, high = INT_RANGES[name]
            if not low <= value <= high:
                return f"{event_type}.{path} is {value}; accepted: {low} to {high}"
    return None
