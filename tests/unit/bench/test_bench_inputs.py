"""What the benchmark reads and generates, without servers: wrk's report line, py-spy's raw
stacks, the replay's rate and memory halves, and the generated histories (valid events whose
fold is what the growth states are built from)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.dataset import events_of, history_steps, subject_events, subject_steps
from bench.growth import fact_rows
from bench.profile import aggregate, top
from bench.replay import memory_halves, replay_rate
from bench.wrk import parse_report
from projections.state import fold
from projections.subject_state import COLUMNS
from schemas.codec import default_codec
from tests.properties import examples

WRK_LINE = (
    'WRK_JSON {"requests":2342,"duration_us":2000000,"bytes":823924,"errors_connect":1,'
    '"errors_read":0,"errors_write":0,"errors_status":3,"errors_timeout":2,"p50_us":2547,'
    '"p90_us":7506,"p99_us":12841,"p999_us":15984,"max_us":19357,"mean_us":3599.2}'
)


def test_wrk_report_line_is_read_in_milliseconds_and_errors_add_up() -> None:
    result = parse_report(f"Running 2s test\n{WRK_LINE}\n", cpu_s=1.0)
    assert result.requests == 2342 and result.errors == 6
    assert result.requests_per_s == pytest.approx(1171)
    assert (result.p50_ms, result.p99_ms, result.max_ms) == (2.547, 12.841, 19.357)
    assert result.cpu_share == pytest.approx(0.5)


def test_wrk_output_without_the_report_line_is_refused() -> None:
    with pytest.raises(ValueError, match="WRK_JSON"):
        parse_report("Running 2s test\nRequests/sec: 5\n")


def test_pyspy_stacks_give_own_and_inclusive_shares() -> None:
    raw = "\n".join(
        [
            "main (a.py);handle (b.py);query (c.py) 6",
            "main (a.py);handle (b.py) 2",
            "main (a.py);encode (d.py) 2",
            "not a stack line",
        ]
    )
    profile = aggregate(raw)
    assert profile.samples == 10
    own, inclusive = top(profile, 2)
    assert own == [(60.0, "query (c.py)"), (20.0, "handle (b.py)")]
    assert inclusive == [(100.0, "main (a.py)"), (80.0, "handle (b.py)")]


def test_a_recursive_frame_counts_once_per_stack_in_the_inclusive_time() -> None:
    profile = aggregate("f (x.py);f (x.py);g (y.py) 4")
    assert profile.inclusive["f (x.py)"] == 4 and profile.own["g (y.py)"] == 4


@pytest.mark.parametrize(
    ("first", "finished", "expected"),
    [
        ((10.0, 1_000), 20.0, (9_000, 10.0)),  # counted from the first progress seen
        (None, 5.0, (10_000, 5.0)),  # over before any progress was seen: from the start
        ((5.0, 10_000), 5.0, (10_000, 5.0)),  # first seen already complete
    ],
)
def test_replay_rate_leaves_out_the_group_join(
    first: tuple[float, int] | None, finished: float, expected: tuple[int, float]
) -> None:
    assert replay_rate(10_000, 0.0, first, finished) == expected


def test_memory_halves_split_the_samples_at_half_the_events() -> None:
    samples = [(0, 40.0), (100, 55.0), (499, 50.0), (500, 52.0), (1_000, 51.0)]
    assert memory_halves(samples, 1_000) == (55.0, 52.0)
    assert memory_halves([], 1_000) == (0.0, 0.0)


@settings(max_examples=examples(50), deadline=None)
@given(st.integers(min_value=0, max_value=2**32))
def test_every_generated_history_encodes_decodes_and_folds(seed: int) -> None:
    codec = default_codec()
    rnd = random.Random(seed)
    events = events_of("s1", subject_steps(rnd), rnd)
    assert [codec.decode(codec.encode(e)) for e in events] == events
    times = [e.occurred_at for e in events]
    assert times == sorted(times)
    state = fold((e, (0, n)) for n, e in enumerate(events))
    assert len(state) <= len(events)


def test_generation_is_reproducible_and_ids_do_not_repeat_across_prefixes() -> None:
    first = list(subject_events(7, "s", 50))
    assert first == list(subject_events(7, "s", 50))
    other = {e.event_id for e in subject_events(7, "g", 50)}
    assert not other & {e.event_id for e in first}
    assert len({e.event_id for e in first}) == len(first)


def test_the_long_history_has_the_count_asked_for_and_mixes_changes() -> None:
    steps = history_steps(1_000)
    assert len(steps) == 1_000
    assert {kind for kind, _, _ in steps} >= {"ConsentGranted", "ConsentWithdrawn"}


def test_growth_rows_are_the_fold_of_each_subject_and_fit_the_table() -> None:
    rows = list(fact_rows(200, 4, 1))
    assert all(len(row) == len(COLUMNS) for row in rows)
    keys = [(r[0], r[1], r[2], r[3]) for r in rows]
    assert len(keys) == len(set(keys))  # one row per primary key, as the projector leaves it
    assert {r[0] for r in rows} <= {f"g{n}" for n in range(200)}
