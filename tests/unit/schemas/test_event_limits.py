"""The limit check names the first breaking value exactly as a plain walk of every leaf would:
the projector's check skips the per-leaf path strings, not the rules."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.event_limits import EARLIEST, INT_RANGES, LATEST, limit_problem
from tests.properties import examples


def _reference_leaves(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _reference_leaves(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _reference_leaves(item, f"{path}[{index}]")
    else:
        yield path, value


def reference_problem(event_type: str, record: Mapping[str, Any]) -> str | None:
    """The rules stated plainly: every leaf with its path, the first that breaks one."""
    for path, value in _reference_leaves(record, ""):
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


KEYS = st.sampled_from(["months", "a.months", "months.x", "", ".", "x", "purposes", "a.b"])
TEXTS = st.text(alphabet=st.sampled_from(["a", ".", "\x00", "é", "[", "0"]), max_size=4)
TIMES = st.sampled_from(
    [
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(1899, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(1900, 1, 1, tzinfo=UTC),
        datetime(1900, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))),
        datetime(2024, 5, 1, tzinfo=UTC),
        datetime(8999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(9000, 1, 1, tzinfo=UTC),
        datetime(1, 1, 1),  # naive: never checked
        datetime(9999, 12, 31),
    ]
)
LEAVES = st.one_of(
    TEXTS,
    TIMES,
    st.integers(-3, 4),
    st.booleans(),
    st.none(),
    st.just(UUID(int=7)),
    st.binary(max_size=3),
    st.floats(allow_nan=False),
)
TREES = st.recursive(
    LEAVES,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(KEYS | st.integers(0, 2), inner, max_size=4)
    ),
    max_leaves=12,
)
RECORDS = st.dictionaries(KEYS, TREES, max_size=5)


@settings(max_examples=examples(600), deadline=None, database=None)
@given(record=RECORDS)
def test_the_check_agrees_with_a_plain_walk_of_every_leaf(record: dict[str, Any]) -> None:
    assert limit_problem("Ev", record) == reference_problem("Ev", record)


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        ({"subject_id": "s1", "purposes": ["a", "b"]}, None),
        (
            {"source": {"method": "api", "system": "crm\x00"}},
            "Ev.source.system contains U+0000, which PostgreSQL text cannot store",
        ),
        (
            {"purposes": ["a", "b\x00"], "reason": "\x00"},
            "Ev.purposes[1] contains U+0000, which PostgreSQL text cannot store",
        ),
        (
            {"expires_at": datetime(9000, 1, 1, tzinfo=UTC)},
            "Ev.expires_at is 9000-01-01T00:00:00+00:00; times must lie from 1900-01-01"
            " up to 9000-01-01",
        ),
        ({"expires_at": datetime(9999, 1, 1)}, None),
        ({"months": 3}, "Ev.months is 3; accepted: 1 to 2"),
        ({"months": 2, "weeks": 99, "flag": True}, None),
        ({"extension": {"months": 0}}, "Ev.extension.months is 0; accepted: 1 to 2"),
        ({"months": [5]}, None),
    ],
)
def test_the_first_breaking_value_is_named_by_its_path(
    record: dict[str, Any], problem: str | None
) -> None:
    assert limit_problem("Ev", record) == problem
    assert reference_problem("Ev", record) == problem
