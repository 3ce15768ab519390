"""The staleness rule: when a partition was last caught up, and when decisions are refused."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from projections.freshness import PartitionFreshness, Verdict, assess, caught_up, staleness
from projections.log_loss import AHEAD_OF_LOG, LogLoss
from projections.partition_watch import MAX_OBSERVATIONS, PartitionWatch
from projections.projector_health import PartitionReport


@pytest.mark.parametrize(
    ("observations", "position", "reached", "left"),
    [
        ([], 5, None, []),
        ([(5, 100)], 5, 100, []),
        ([(5, 100)], 4, None, [(5, 100)]),
        ([(3, 100), (5, 200), (9, 300)], 6, 200, [(9, 300)]),
        ([(3, 100), (3, 200)], 3, 200, []),  # an idle log: the latest response counts
        ([(9, 300), (3, 100)], 3, 100, [(9, 300)]),  # order does not matter
    ],
)
def test_caught_up(
    observations: list[tuple[int, int]],
    position: int,
    reached: int | None,
    left: list[tuple[int, int]],
) -> None:
    assert caught_up(observations, position) == (reached, left)


observation_lists = st.lists(st.tuples(st.integers(0, 1000), st.integers(0, 10**6)))


@given(observations=observation_lists, position=st.integers(0, 1000))
def test_caught_up_is_the_latest_reached_instant_and_keeps_the_rest(
    observations: list[tuple[int, int]], position: int
) -> None:
    reached, left = caught_up(observations, position)
    times = [t for h, t in observations if h <= position]
    assert reached == (max(times) if times else None)
    assert left == [(h, t) for h, t in observations if h > position]


@given(observations=observation_lists, first=st.integers(0, 1000), more=st.integers(0, 1000))
def test_moving_forward_never_loses_a_caught_up_instant(
    observations: list[tuple[int, int]], first: int, more: int
) -> None:
    early, left = caught_up(observations, first)
    late, _ = caught_up(left, first + more)
    combined, _ = caught_up(observations, first + more)
    assert combined == max((t for t in (early, late) if t is not None), default=None)


def part(
    partition: int, behind_s: float | None, position: int = 5, hw: int = 5
) -> PartitionFreshness:
    return PartitionFreshness(partition, position, hw, behind_s, ("w1",))


LOSS = LogLoss(1, AHEAD_OF_LOG, 9, 0, 2)


@pytest.mark.parametrize(
    ("partitions", "stops", "limit", "fresh", "reason"),
    [
        ([part(0, 0.5), part(1, 2.0)], [], 30, True, None),
        ([part(0, 0.5), part(1, 31.0)], [], 30, False, "31.0 s behind the log on partition 1"),
        ([part(0, 30.0), part(1, 1.0)], [], 30, True, None),  # at the limit is not beyond it
        ([part(0, 0.5), part(1, None)], [], 30, False, "partition 1 has not caught up"),
        ([part(0, 0.5)], [], 30, False, "no projector has reported partition 1 yet"),
        ([], [], 30, False, "no projector has reported partition 0, 1 yet"),
        ([part(0, 0.5), part(1, 0.5)], [LOSS], 30, False, "the projector stopped: partition 1"),
        # the guard off: only a stop counts
        ([part(0, 99.0)], [], 0, True, None),
        ([], [], 0, True, None),
        ([part(0, 0.1), part(1, 0.1)], [LOSS], 0, False, "the projector stopped"),
    ],
)
def test_assess(
    partitions: list[PartitionFreshness],
    stops: list[LogLoss],
    limit: float,
    fresh: bool,
    reason: str | None,
) -> None:
    verdict = assess(partitions, stops, 2, limit, "w1")
    assert verdict.fresh is fresh
    if reason is None:
        assert verdict.reason is None
    else:
        assert verdict.reason is not None and reason in verdict.reason


behinds = st.none() | st.floats(0, 1e6, allow_nan=False)


@given(
    behind=st.lists(behinds, min_size=3, max_size=3),
    limit=st.floats(0.001, 1e6, allow_nan=False),
)
def test_fresh_exactly_when_every_partition_is_within_the_limit(
    behind: list[float | None], limit: float
) -> None:
    partitions = [part(p, b) for p, b in enumerate(behind)]
    verdict = assess(partitions, [], 3, limit, "w1")
    assert verdict.fresh == all(b is not None and b <= limit for b in behind)
    assert verdict == Verdict(verdict.fresh, verdict.reason, staleness(partitions))
    assert math.isinf(verdict.staleness_s) == any(b is None for b in behind)


def test_lag_is_never_negative_and_unknown_without_a_high_water_mark() -> None:
    assert part(0, 0.0, position=3, hw=10).lag == 7
    assert part(0, 0.0, position=12, hw=10).lag == 0
    assert PartitionFreshness(0, 3, None, None).lag is None


# --- the projector's side: what it reports ----------------------------------------------------


def test_a_new_assignment_checks_the_log_start_and_starts_where_stored() -> None:
    watch = PartitionWatch()
    losses = watch.assign([0, 1, 2], stored={0: 7, 1: 2}, log_starts={0: 0, 1: 4, 2: 3})
    assert watch.positions == {0: 7, 1: 2, 2: 3}
    assert [(x.partition, x.problem, x.stored_offset) for x in losses] == [
        (1, "before_log_start", 2),
        (2, "before_log_start", 0),
    ]


def test_reports_say_when_each_partition_was_last_caught_up() -> None:
    watch = PartitionWatch()
    watch.assign([0, 1], stored={0: 5}, log_starts={0: 0, 1: 0})
    watch.observe(0, 5, 10_000)  # caught up at 10 s
    watch.observe(1, 3, 10_000)  # three records to apply
    assert watch.reports(12_000, stopped=False) == [
        PartitionReport(0, 5, 5, 2.0),
        PartitionReport(1, 0, 3, None),
    ]
    watch.observe(1, 8, 11_000)
    watch.applied({1: 3})  # reached the mark seen at 10 s, not the one seen at 11 s
    watch.observe(0, 5, 10_000)  # the same response again: not a new observation
    assert watch.reports(13_000, stopped=False) == [
        PartitionReport(0, 5, 5, 3.0),
        PartitionReport(1, 3, 8, 3.0),
    ]
    assert watch.losses({0: 4, 1: 8}) == [LogLoss(0, AHEAD_OF_LOG, 5, None, 4)]


def test_a_stopped_projector_claims_no_caught_up_time() -> None:
    watch = PartitionWatch()
    watch.assign([0], stored={0: 5}, log_starts={0: 0})
    watch.observe(0, 5, 1_000)
    assert watch.reports(2_000, stopped=True) == [PartitionReport(0, 5, 5, None)]


def test_a_long_lag_keeps_only_recent_observations_and_still_finds_the_instant() -> None:
    watch = PartitionWatch()
    watch.assign([0], stored={}, log_starts={0: 0})
    for second in range(MAX_OBSERVATIONS * 2):
        watch.observe(0, second + 1, second * 1000)
    assert watch.reports(0, stopped=False)[0].caught_up_age_s is None
    assert len(watch._pending[0]) == MAX_OBSERVATIONS
    watch.applied({0: MAX_OBSERVATIONS * 2})
    [report] = watch.reports(MAX_OBSERVATIONS * 2000, stopped=False)
    assert report.caught_up_age_s == 1.0
