"""Loss detection: a stored offset against the log's start and high-water mark."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from projections.log_loss import AHEAD_OF_LOG, BEFORE_LOG_START, LogLoss, classify, summary
from projections.partition_watch import refused

offsets = st.integers(0, 2**40)


@pytest.mark.parametrize(
    ("stored", "log_start", "highwater", "problem"),
    [
        (5, 0, 5, None),  # caught up
        (3, 0, 5, None),  # behind, records still there
        (0, 0, 0, None),  # empty log, nothing applied
        (None, 0, 7, None),  # nothing applied, the log starts at 0
        (None, None, None, None),  # nothing known yet
        (5, None, None, None),
        (6, 0, 5, AHEAD_OF_LOG),  # recreated or truncated topic
        (5, 0, 0, AHEAD_OF_LOG),  # an empty topic where the projection has records
        (5, None, 4, AHEAD_OF_LOG),
        (2, 3, 9, BEFORE_LOG_START),  # records 2 and 3 deleted before they were applied
        (None, 1, 9, BEFORE_LOG_START),  # nothing applied, but the log no longer starts at 0
        (3, 3, 9, None),  # deleted records were all applied
        (10, 3, 9, AHEAD_OF_LOG),
    ],
)
def test_classify(
    stored: int | None, log_start: int | None, highwater: int | None, problem: str | None
) -> None:
    found = classify(7, stored, log_start, highwater)
    expected = None if problem is None else LogLoss(7, problem, stored or 0, log_start, highwater)
    assert found == expected


@given(stored=offsets, log_start=offsets, length=offsets)
def test_a_log_serves_exactly_the_offsets_from_its_start_to_its_end(
    stored: int, log_start: int, length: int
) -> None:
    highwater = log_start + length
    found = classify(0, stored, log_start, highwater)
    assert (found is None) == (log_start <= stored <= highwater)
    if found is not None:
        assert found.problem == (AHEAD_OF_LOG if stored > highwater else BEFORE_LOG_START)


@given(offset=offsets, log_start=st.none() | offsets, highwater=st.none() | offsets)
def test_an_offset_the_broker_refused_is_always_a_loss(
    offset: int, log_start: int | None, highwater: int | None
) -> None:
    found = refused(1, offset, log_start, highwater)
    assert found.partition == 1 and found.stored_offset == offset
    below = log_start is not None and offset < log_start
    beyond = highwater is not None and offset > highwater
    if below and not beyond:
        assert found.problem == BEFORE_LOG_START
    if not below:
        assert found.problem == AHEAD_OF_LOG


def test_descriptions_name_the_partition_the_offsets_and_the_cause() -> None:
    ahead = LogLoss(3, AHEAD_OF_LOG, 120, 0, 4)
    before = LogLoss(1, BEFORE_LOG_START, 0, 50, 90)
    assert ahead.describe() == (
        "partition 3: the projection has applied the log up to offset 120, but the log ends at"
        " 4: the topic was recreated or truncated"
    )
    assert before.describe() == (
        "partition 1: the projection needs the log from offset 0, but it begins at 50: records"
        " were deleted before they were projected"
    )
    assert summary([ahead, before]) == f"{before.describe()}; {ahead.describe()}"
    assert "ends at unknown" in LogLoss(0, AHEAD_OF_LOG, 9, None, None).describe()
