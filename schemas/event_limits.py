"""Limits every event keeps that its Avro schema cannot state.

An Avro string may hold U+0000, a timestamp any instant Python can represent and an int any
32-bit value; PostgreSQL text cannot store U+0000, calendar arithmetic on a deadline or a
retention period overflows near year 9999, and a deadline extension is 1 or 2 months. The
codec refuses to encode or decode an event outside these limits, so an event in the log is
one the projector can apply: a record that breaks them is kept in rejected_records instead
of stopping the projector on every retry.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final
from uuid import UUID

#: the instants an event may carry (occurred_at, recorded_at and every time in its data)
EARLIEST: Final = datetime(1900, 1, 1, tzinfo=UTC)
LATEST: Final = datetime(9000, 1, 1, tzinfo=UTC)
#: whole-number data fields and the values their schema's documentation allows
INT_RANGES: Final[Mapping[str, tuple[int, int]]] = {"months": (1, 2)}


#: leaf types that can break no limit and hold nothing: skipped without further checks
_INERT: Final = frozenset({type(None), bool, float, bytes, UUID})

_NONE: Final = (0, 0)
#: where a breaking value sits, outermost first: (True, index) in a list, (False, key) in a map
_Step = tuple[bool, Any]


def _breach(container: Any, tail: str) -> tuple[list[_Step], Any, tuple[int, int]] | None:
    """The first value of a map, list or tuple that breaks a limit, with its steps innermost
    first, in the order of a depth-first walk of every leaf. Builds no path while nothing is
    wrong: this runs for every event the projector decodes.

    `tail` is the last dot-separated segment of the container's path: an int's limit is looked
    up by the last segment of its own path (`months` in `a.months`)."""
    is_list = not isinstance(container, Mapping)
    items = enumerate(container) if is_list else container.items()
    for key, value in items:
        kind = type(value)
        if kind is str:  # the common case first
            if "\x00" in value:
                return [(is_list, key)], value, _NONE
        elif kind in _INERT:
            continue
        elif isinstance(value, str):
            if "\x00" in value:
                return [(is_list, key)], value, _NONE
        elif isinstance(value, datetime):
            if value.utcoffset() is not None and not EARLIEST <= value < LATEST:
                return [(is_list, key)], value, _NONE
        elif isinstance(value, Mapping | list | tuple):
            name = f"{tail}[{key}]" if is_list else str(key).rsplit(".", 1)[-1]
            found = _breach(value, name)
            if found is not None:
                found[0].append((is_list, key))
                return found
        elif isinstance(value, int) and not isinstance(value, bool):
            name = f"{tail}[{key}]" if is_list else str(key).rsplit(".", 1)[-1]
            limits = INT_RANGES.get(name)
            if limits is not None and not limits[0] <= value <= limits[1]:
                return [(is_list, key)], value, limits
    return None


def unstorable(text: str) -> str | None:
    """Why PostgreSQL text (and so an event or a stored setting) cannot hold `text`, or None:
    U+0000, or a lone surrogate, which UTF-8 cannot encode."""
    if "\x00" in text:
        return "must not contain U+0000"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode (no lone surrogates)"
    return None


def _path(steps: list[_Step]) -> str:
    path = ""
    for is_index, key in reversed(steps):
        path = f"{path}[{key}]" if is_index else f"{path}.{key}" if path else str(key)
    return path


def limit_problem(event_type: str, record: Mapping[str, Any]) -> str | None:
    """Why the record of an `event_type` event breaks a limit, or None when it keeps them all.

    The first breaking value of a depth-first walk (fields in the record's order) is named by
    its path: `source.system`, `purposes[2]`."""
    found = _breach(record, "")
    if found is None:
        return None
    steps, value, limits = found
    where = f"{event_type}.{_path(steps)}"
    if isinstance(value, str):
        return f"{where} contains U+0000, which PostgreSQL text cannot store"
    if isinstance(value, datetime):
        return (
            f"{where} is {value.isoformat()}; times must lie from"
            f" {EARLIEST.date()} up to {LATEST.date()}"
        )
    low, high = limits
    return f"{where} is {value}; accepted: {low} to {high}"
