"""The benchmark table's logic without servers: medians, spreads, ratios, pass/fail, the
rendering, the issue's sizes at a scale, and the lines a run's samples become."""

from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.client_scenarios import EndToEnd, percentile
from bench.replay import ReplayResult
from bench.report import (
    B_HTTP,
    B_READ,
    B_WRITE,
    DECISION,
    GRANT,
    HISTORY,
    Collected,
    measurements,
)
from bench.sizes import size_note, sizes_for
from bench.table import (
    Measurement,
    Target,
    evaluate,
    fmt,
    median,
    misses,
    render_markdown,
    render_text,
    spread_pct,
    to_json,
    verdict,
)
from bench.wrk import WrkResult


@pytest.mark.parametrize(
    ("target", "value", "ratio", "expected"),
    [
        (Target("ratio_min", 0.9), 100.0, 0.9, "pass"),
        (Target("ratio_min", 0.9), 100.0, 0.89, "FAIL"),
        (Target("ratio_max", 1.5), 30.0, 1.5, "pass"),
        (Target("ratio_max", 1.5), 30.0, 1.51, "FAIL"),
        (Target("max", 100), 99.9, None, "pass"),
        (Target("max", 100), 100.1, None, "FAIL"),
        (Target("min", 950), 950.0, None, "pass"),
        (Target("min", 950), 949.0, None, "FAIL"),
        (Target("ratio_min", 0.8), 100.0, None, "n/a"),
        (Target("max", 20), None, None, "n/a"),
        (Target("info"), 5.0, 2.0, "-"),
    ],
)
def test_verdict(target: Target, value: float | None, ratio: float | None, expected: str) -> None:
    assert verdict(target, value, ratio) == expected


@pytest.mark.parametrize(
    ("samples", "mid", "spread"),
    [
        ((), None, None),
        ((5.0,), 5.0, 0.0),
        ((90.0, 100.0, 110.0), 100.0, 10.0),
        ((1.0, 2.0, 3.0, 10.0), 2.5, 180.0),
    ],
)
def test_median_and_spread(
    samples: tuple[float, ...], mid: float | None, spread: float | None
) -> None:
    assert median(samples) == mid
    assert spread_pct(samples) == (None if spread is None else pytest.approx(spread))


@given(st.lists(st.floats(min_value=0.001, max_value=1e7), min_size=1, max_size=20))
def test_the_spread_is_never_negative_and_the_median_lies_within_the_samples(
    samples: list[float],
) -> None:
    mid = median(samples)
    assert mid is not None and min(samples) <= mid <= max(samples)
    assert (spread_pct(samples) or 0.0) >= 0


def test_evaluate_divides_our_median_by_the_baselines() -> None:
    m = Measurement(
        "s",
        "throughput",
        "req/s",
        (90.0, 100.0, 95.0),
        Target("ratio_min", 0.9),
        "B-read",
        (200.0, 100.0, 110.0),
    )
    outcome = evaluate(m)
    assert (outcome.median, outcome.baseline_median) == (95.0, 110.0)
    assert outcome.ratio == pytest.approx(95 / 110)
    assert outcome.verdict == "FAIL"


@pytest.mark.parametrize(("share", "expected"), [(0.0, "pass"), (0.01, "pass"), (0.02, "invalid")])
def test_too_many_failed_requests_make_a_figure_invalid(share: float, expected: str) -> None:
    m = Measurement("s", "p99", "ms", (10.0,), Target("max", 20), error_share=share)
    assert evaluate(m).verdict == expected
    assert (evaluate(m) in misses([evaluate(m)])) == (expected != "pass")


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (None, "ms", "-"),
        (12345.6, "req/s", "12,346"),
        (3.14159, "req/s", "3"),
        (3.14159, "ms", "3.14"),
        (31.4159, "ms", "31.4"),
        (314.159, "MB", "314"),
        (1234.5, "ms", "1,234"),
    ],
)
def test_fmt(value: float | None, unit: str, text: str) -> None:
    assert fmt(value, unit) == text


SAMPLE = [
    Measurement(
        "decision | fast",
        "throughput",
        "req/s",
        (10.0, 12.0),
        Target("ratio_min", 0.9),
        "B-read",
        (10.0,),
        "100 of 1,000 subjects",
        True,
        note="a note",
    ),
    Measurement("history", "p99", "ms", (25.0,), Target("max", 20)),
]


def test_text_table_has_a_header_a_rule_and_one_line_per_figure() -> None:
    lines = render_text([evaluate(m) for m in SAMPLE]).splitlines()
    assert len(lines) == 2 + len(SAMPLE)
    assert lines[0].startswith("scenario") and set(lines[1]) <= {"-", " "}
    assert "1.10" in lines[2] and "pass" in lines[2] and "(reduced)" in lines[2]
    assert "FAIL" in lines[3] and "<= 20 ms" in lines[3]


def test_markdown_escapes_pipes_and_lists_notes() -> None:
    md = render_markdown([evaluate(m) for m in SAMPLE])
    rows = [line for line in md.splitlines() if line.startswith("|")]
    assert len(rows) == 2 + len(SAMPLE)
    assert "decision \\| fast" in md
    assert "- decision | fast, throughput: a note" in md


def test_json_keeps_every_sample_and_the_verdict() -> None:
    document = json.loads(json.dumps(to_json([evaluate(m) for m in SAMPLE])))
    assert document[0]["samples"] == [10.0, 12.0]
    assert document[0]["baseline_samples"] == [10.0]
    assert document[0]["reduced"] is True
    assert [d["result"] for d in document] == ["pass", "FAIL"]


@pytest.mark.parametrize(
    ("scale", "subjects", "batch", "growth"),
    [
        (1, 1_000_000, 100_000, (100_000, 1_000_000, 10_000_000)),
        (0.1, 100_000, 100_000, (10_000, 100_000, 1_000_000)),
        (0.01, 10_000, 10_000, (1_000, 10_000, 100_000)),
        (0.0001, 1_000, 1_000, (1_000,)),
    ],
)
def test_sizes_at_a_scale(scale: float, subjects: int, batch: int, growth: tuple[int, ...]) -> None:
    sizes = sizes_for(scale)
    assert (sizes.subjects, sizes.batch, sizes.growth) == (subjects, batch, growth)
    assert sizes.history_events == 1_000


def test_a_scale_must_be_positive() -> None:
    with pytest.raises(ValueError, match="scale"):
        sizes_for(0)


@pytest.mark.parametrize(
    ("actual", "issue", "expected"),
    [
        (1_000_000, 1_000_000, ("1,000,000 subjects", False)),
        (2_450_000, 1_000_000, ("2,450,000 subjects", False)),
        (100_000, 1_000_000, ("100,000 of 1,000,000 subjects", True)),
    ],
)
def test_size_note(actual: int, issue: int, expected: tuple[str, bool]) -> None:
    assert size_note(actual, issue, "subjects") == expected


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([], 99, None),
        ([5.0], 99, 5.0),
        ([float(n) for n in range(1, 101)], 99, 99.0),
        ([float(n) for n in range(1, 101)], 50, 50.0),
        ([3.0, 1.0, 2.0], 100, 3.0),
    ],
)
def test_percentile_by_nearest_rank(values: list[float], q: float, expected: float | None) -> None:
    assert percentile(values, q) == expected


def _wrk(rps: float, p99: float, errors: int = 0) -> WrkResult:
    return WrkResult(int(rps * 10), 10.0, errors, p99 / 3, p99 / 2, p99, p99 * 2, cpu_s=3.0)


def _collected() -> Collected:
    c = Collected(replay_events=245_000)
    c.wrk = {
        B_HTTP: [_wrk(6000, 10), _wrk(6200, 11)],
        B_READ: [_wrk(1500, 80), _wrk(1400, 90)],
        DECISION: [_wrk(1400, 100), _wrk(1300, 120)],
        HISTORY: [_wrk(30, 25)],
        B_WRITE: [_wrk(1600, 70)],
        GRANT: [_wrk(1200, 90, errors=500)],
    }
    c.consume, c.copy = [200_000.0, 10_000.0], [50_000.0, 60_000.0]
    c.replay = [ReplayResult(245_000, 10.0, 50.0, 55.0, 60.0, 80.0)]
    c.batch, c.bulk = [100_000.0], [200_000.0]
    c.e2e = [EndToEnd(1000.0, 990.0, [float(n) for n in range(1, 101)])]
    c.growth = {1_000: [_wrk(1000, 50)], 10_000: [_wrk(1000, 60)], 100_000: [_wrk(1000, 70)]}
    return c


def _by(outcomes: list[tuple[str, str, str]], scenario: str, figure: str) -> str:
    found = [v for s, f, v in outcomes if s.startswith(scenario) and f == figure]
    assert found, f"no line {scenario!r} {figure!r}"
    return found[0]


def test_a_run_becomes_the_issues_lines_with_their_verdicts() -> None:
    outcomes = [evaluate(m) for m in measurements(_collected(), sizes_for(0.01))]
    seen = [(o.measurement.scenario, o.measurement.figure, o.verdict) for o in outcomes]
    assert _by(seen, "single decision", "throughput") == "pass"  # 1350 / 1450 > 0.9
    assert _by(seen, "single decision", "p99") == "pass"  # 110 / 85 < 1.5
    assert _by(seen, "command (grant)", "throughput") == "invalid"  # 500 of 12,000 failed
    assert _by(seen, "subject history", "p99") == "FAIL"
    assert _by(seen, "load generator", "ceiling") == "pass"
    assert _by(seen, "end to end", "p99") == "pass"  # 99 ms
    assert _by(seen, "end to end", "achieved rate") == "pass"
    assert _by(seen, "batch decision", "throughput") == "FAIL"  # 0.5 x B-bulk
    # the floor is the smaller of the two baselines run by run: 10,000 in the second run
    replay = next(o for o in outcomes if o.measurement.scenario.startswith("projector replay"))
    assert replay.measurement.baseline == (50_000.0, 10_000.0)
    assert replay.verdict == "pass"  # 24,500 / 30,000 >= 0.5
    assert _by(seen, "memory: API during", "peak RSS") == "pass"
    assert _by(seen, "memory: projector, 2nd half", "peak RSS") == "pass"  # 55 / 50
    assert _by(seen, "growth: single decision, 10,000", "p99") == "pass"  # 60 / 50
    assert _by(seen, "growth: single decision, 100,000", "p99") == "FAIL"  # 70 / 50
    reduced = {o.measurement.scenario for o in outcomes if o.measurement.reduced}
    assert any(s.startswith("single decision") for s in reduced)


def test_cpu_lines_compare_a_requests_cost_and_the_e2e_note_says_where_cpu_went() -> None:
    c = _collected()
    c.wrk[DECISION] = [dataclasses.replace(_wrk(1400, 100), server_cpu_s=5.6)]  # 14,000 requests
    c.wrk[B_READ] = [dataclasses.replace(_wrk(1500, 80), server_cpu_s=4.5), _wrk(1400, 90)]
    c.e2e[0].cores = {"client": 0.4, "API": 0.95, "projector": 0.3}
    lines = measurements(c, sizes_for(0.01))
    cpu = next(
        m for m in lines if m.scenario.startswith("single decision") and m.unit == "us/request"
    )
    assert cpu.ours == pytest.approx((400.0,))
    assert cpu.baseline == pytest.approx((300.0,))  # the run without the figure is left out
    grant_cpu = next(
        m for m in lines if m.scenario.startswith("command") and m.unit == "us/request"
    )
    assert grant_cpu.ours == ()  # not measured: shown as n/a, never as zero
    rate = next(m for m in lines if m.figure == "achieved rate")
    assert rate.note == "cores used at most during a run: client 0.40, API 0.95, projector 0.30"
