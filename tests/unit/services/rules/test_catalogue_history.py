"""The purpose catalogue over time: which version is in force at an instant, retirements, order."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.rules.catalogue import Catalogue, Purpose
from services.rules.catalogue_history import (
    EPOCH,
    TICK,
    CatalogueHistory,
    HistoryError,
    PurposeRetirement,
    PurposeVersion,
    same_definition,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)
NEWS = Purpose("news", "Newsletter", "consent", True, ("email",), recipients=(), version=1)
NEWS2 = replace(NEWS, basis="legitimate_interest", version=2)
NEWS3 = replace(NEWS, title="News", version=3)
STATS = Purpose("stats", "Statistics", "legitimate_interest", False, ("web",), version=1)

HISTORY = CatalogueHistory(
    [
        PurposeVersion(T0, NEWS),
        PurposeVersion(T0, STATS),
        PurposeVersion(T0 + 10 * DAY, NEWS2),
        PurposeVersion(T0 + 20 * DAY, PurposeRetirement("stats", 2)),
        PurposeVersion(T0 + 30 * DAY, NEWS3),
    ]
)


def _seen(catalogue: Catalogue) -> dict[str, int]:
    return {pid: p.version for pid, p in catalogue.purposes.items()}


@pytest.mark.parametrize(
    ("instant", "expected"),
    [
        (T0 - timedelta(microseconds=1), {}),
        (T0, {"news": 1, "stats": 1}),
        (T0 + 10 * DAY - timedelta(microseconds=1), {"news": 1, "stats": 1}),
        (T0 + 10 * DAY, {"news": 2, "stats": 1}),
        (T0 + 20 * DAY, {"news": 2}),
        (T0 + 30 * DAY, {"news": 3}),
        (T0 + 3000 * DAY, {"news": 3}),
    ],
    ids=["before", "defined", "just-before-change", "changed", "retired", "third", "long-after"],
)
def test_at_is_each_purpose_latest_version_in_force_by_then(
    instant: datetime, expected: dict[str, int]
) -> None:
    assert _seen(HISTORY.at(instant)) == expected


def test_at_answers_the_version_s_words() -> None:
    assert HISTORY.at(T0 + 5 * DAY).purposes["news"].basis == "consent"
    assert HISTORY.at(T0 + 15 * DAY).purposes["news"].basis == "legitimate_interest"


def test_current_is_the_latest_versions_without_the_retired() -> None:
    assert _seen(HISTORY.current) == {"news": 3}
    assert HISTORY.current.purposes["news"] is NEWS3


def test_versions_are_oldest_first_and_include_retirements() -> None:
    assert [(v.version, v.retired) for v in HISTORY.versions("stats")] == [(1, False), (2, True)]
    assert [v.in_force_from for v in HISTORY.versions("news")] == [T0, T0 + 10 * DAY, T0 + 30 * DAY]
    assert HISTORY.versions("nothing") == []
    assert (HISTORY.next_version("stats"), HISTORY.next_version("nothing")) == (3, 1)
    assert HISTORY.ids == ("news", "stats")


def test_a_retired_purpose_defined_again_is_back_from_then() -> None:
    again = replace(STATS, version=3)
    history = CatalogueHistory([*HISTORY.versions("stats"), PurposeVersion(T0 + 40 * DAY, again)])
    assert _seen(history.at(T0 + 39 * DAY)) == {}
    assert _seen(history.at(T0 + 40 * DAY)) == {"stats": 3}


def test_the_catalogue_keeps_the_order_purposes_came_into_force() -> None:
    later = Purpose("later", "Later", "contract", False, ("post",))
    history = CatalogueHistory(
        [(T0 + DAY, later), (T0, STATS), (T0, NEWS), (T0 + 2 * DAY, replace(STATS, version=2))]
    )
    assert list(history.current.purposes) == ["stats", "news", "later"]


def test_a_catalogue_file_is_one_version_in_force_since_the_epoch() -> None:
    catalogue = Catalogue({"news": NEWS, "stats": STATS})
    history = CatalogueHistory.from_catalogue(catalogue)
    assert history.at(EPOCH) == catalogue == history.current
    assert history.at(EPOCH - DAY).purposes == {}


@pytest.mark.parametrize(
    "entries",
    [
        [(T0, NEWS), (T0 + DAY, replace(NEWS2, version=1))],
        [(T0, NEWS), (T0, PurposeRetirement("news", 1))],
        [(datetime(2026, 1, 1), NEWS)],  # naive: refused
    ],
    ids=["two-definitions", "retired-same-version", "naive"],
)
def test_contradicting_versions_are_refused(entries: list[tuple[datetime, Purpose]]) -> None:
    with pytest.raises(HistoryError):
        CatalogueHistory(entries)


def test_same_definition_ignores_the_version_number() -> None:
    assert same_definition(NEWS, replace(NEWS, version=7))
    assert not same_definition(NEWS, NEWS2)


_changes = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c"]),
        st.integers(min_value=0, max_value=50),
        st.booleans(),
    ),
    max_size=15,
)


@given(changes=_changes, probe=st.integers(min_value=-1, max_value=60))
def test_at_agrees_with_replaying_the_changes_in_order(
    changes: list[tuple[str, int, bool]], probe: int
) -> None:
    """Replaying the changes one by one up to an instant gives the catalogue `at` answers."""
    entries: list[PurposeVersion] = []
    numbers: dict[str, int] = {}
    clock: dict[str, int] = {}
    for pid, day, retire in changes:
        numbers[pid] = numbers.get(pid, 0) + 1
        clock[pid] = max(clock.get(pid, 0), day)  # a purpose's versions follow each other
        version = numbers[pid]
        definition: Purpose | PurposeRetirement = (
            PurposeRetirement(pid, version)
            if retire
            else Purpose(pid, f"{pid} v{version}", "consent", False, ("email",), version=version)
        )
        entries.append(PurposeVersion(T0 + clock[pid] * DAY, definition))
    history = CatalogueHistory(reversed(entries))
    instant = T0 + probe * DAY
    replayed: dict[str, int] = {}
    for entry in sorted(entries, key=lambda e: (e.in_force_from, e.version)):
        if entry.in_force_from > instant:
            continue
        if entry.retired:
            replayed.pop(entry.id, None)
        else:
            replayed[entry.id] = entry.version
    assert _seen(history.at(instant)) == replayed
    assert set(history.at(instant).ids) <= set(history.ids)


@pytest.mark.parametrize(
    ("instant", "expected"),
    [
        (T0, {}),
        (T0 + 20 * DAY - timedelta(microseconds=1), {}),
        (T0 + 20 * DAY, {"stats": STATS}),
        (None, {"stats": STATS}),
    ],
    ids=["defined", "just-before", "retired", "latest"],
)
def test_retired_at_names_each_retired_purpose_with_its_last_definition(
    instant: datetime | None, expected: dict[str, Purpose]
) -> None:
    assert HISTORY.retired_at(instant) == expected


def test_a_purpose_defined_again_is_no_longer_retired() -> None:
    again = CatalogueHistory(
        [
            PurposeVersion(T0, STATS),
            PurposeVersion(T0 + DAY, PurposeRetirement("stats", 2)),
            PurposeVersion(T0 + 2 * DAY, replace(STATS, version=3)),
        ]
    )
    assert again.retired_at(T0 + DAY) == {"stats": STATS}
    assert again.retired_at() == {}
    assert again.current.get("stats") == replace(STATS, version=3)


def test_a_version_recorded_under_a_clock_behind_comes_into_force_after_its_predecessor() -> None:
    """The log's order is the truth: version 3 with an earlier in_force_from than version 2
    (another process's clock behind) comes into force with version 2, never before it."""
    history = CatalogueHistory(
        [
            PurposeVersion(T0, NEWS),
            PurposeVersion(T0 + timedelta(hours=2), NEWS2),
            PurposeVersion(T0 + timedelta(hours=1), NEWS3),
        ]
    )
    assert [v.in_force_from for v in history.versions("news")] == [
        T0,
        T0 + timedelta(hours=2),
        T0 + timedelta(hours=2),
    ]
    assert history.at(T0 + timedelta(hours=1, minutes=30)).purposes["news"].version == 1
    assert history.at(T0 + timedelta(hours=2)).purposes["news"].version == 3


def test_a_new_version_is_in_force_from_now_or_just_after_the_latest() -> None:
    history = CatalogueHistory([PurposeVersion(T0, NEWS)])
    later = T0 + timedelta(minutes=1)
    assert history.next_in_force("news", later) == later
    assert history.next_in_force("news", T0 - timedelta(seconds=5)) == T0 + TICK
    assert history.next_in_force("never", T0) == T0
