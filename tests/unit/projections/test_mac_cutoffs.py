"""The MAC cut-offs (projections/mac_cutoffs.py) and their command's arguments: a recorded
cut-off never moves forward unless forced, back only when given explicitly."""

from __future__ import annotations

import argparse

import pytest
from hypothesis import given
from hypothesis import strategies as st

from projections.mac_cutoffs import (
    KEPT,
    MOVED_BACK,
    MOVED_FORWARD,
    RECORDED,
    UNCHANGED,
    CutoffChange,
    plan,
    requires_mac,
)
from services.operations.require_record_macs import again_command, describe, parse_at


@pytest.mark.parametrize(
    ("cutoffs", "partition", "offset", "required"),
    [
        ({}, 0, 0, True),  # nothing recorded: a new deployment requires MACs everywhere
        ({0: 10}, 0, 9, False),
        ({0: 10}, 0, 10, True),
        ({0: 10}, 1, 0, True),  # a partition without a cut-off requires them from 0
        ({0: 0}, 0, 0, True),
    ],
)
def test_requires_mac(cutoffs: dict[int, int], partition: int, offset: int, required: bool) -> None:
    assert requires_mac(cutoffs, partition, offset) is required


@pytest.mark.parametrize(
    ("recorded", "proposed", "explicit", "force", "expected"),
    [
        (None, 5, False, False, (5, RECORDED)),
        (5, 5, False, False, (5, UNCHANGED)),
        (5, 9, False, False, (5, KEPT)),  # forward would accept records 5..8 without a MAC
        (5, 9, True, False, (5, KEPT)),  # explicit is not enough to move it forward
        (5, 9, False, True, (9, MOVED_FORWARD)),
        (5, 2, False, False, (5, KEPT)),  # e.g. a shorter topic: never changed silently
        (5, 2, True, False, (2, MOVED_BACK)),  # stricter, and asked for
        (5, 2, False, True, (2, MOVED_BACK)),
    ],
)
def test_plan(
    recorded: int | None,
    proposed: int,
    explicit: bool,
    force: bool,
    expected: tuple[int, str],
) -> None:
    before = {} if recorded is None else {0: recorded}
    (change,) = plan(before, {0: proposed}, explicit=explicit, force=force)
    assert (change.result, change.action) == expected
    assert change.writes is (change.action in (RECORDED, MOVED_FORWARD, MOVED_BACK))


@given(
    recorded=st.dictionaries(st.integers(0, 5), st.integers(0, 1000)),
    proposed=st.dictionaries(st.integers(0, 5), st.integers(0, 1000)),
    explicit=st.booleans(),
)
def test_without_force_no_cutoff_ever_moves_forward(
    recorded: dict[int, int], proposed: dict[int, int], explicit: bool
) -> None:
    for change in plan(recorded, proposed, explicit=explicit, force=False):
        if change.recorded is not None:
            assert change.result <= change.recorded
        else:
            assert change.result == change.proposed
    assert [
        c.partition for c in plan(recorded, proposed, explicit=explicit, force=False)
    ] == sorted(proposed)


def test_negative_offsets_are_refused() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        plan({}, {0: -1}, explicit=True, force=False)


@pytest.mark.parametrize(("text", "expected"), [("0=1234", (0, 1234)), ("11=0", (11, 0))])
def test_parse_at(text: str, expected: tuple[int, int]) -> None:
    assert parse_at(text) == expected


@pytest.mark.parametrize("text", ["", "0", "=5", "0=", "a=1", "0=-1", "-1=0", "0=1.5", "0=1=2"])
def test_parse_at_refuses_and_names_the_option(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=r"--at .*PARTITION=OFFSET"):
        parse_at(text)


def test_the_printed_command_records_the_same_cutoffs_again() -> None:
    command = again_command({1: 40, 0: 7})
    assert command == "consent-ledger require-record-macs --yes --at 0=7 --at 1=40"
    assert [parse_at(a.strip()) for a in command.split("--at ")[1:]] == [(0, 7), (1, 40)]


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (CutoffChange(0, None, 7, 7, RECORDED), "from offset 7 (new)"),
        (CutoffChange(0, 7, 7, 7, UNCHANGED), "(recorded before)"),
        (CutoffChange(0, 7, 9, 7, KEPT), "--force moves it"),
        (CutoffChange(0, 7, 3, 7, KEPT), "--at"),
        (CutoffChange(0, 7, 9, 9, MOVED_FORWARD), "(moved forward from 7)"),
    ],
)
def test_describe(change: CutoffChange, says: str) -> None:
    assert says in describe(change)
