"""bench/RESULTS.md as `make bench` rewrites it: the latest run's table, a line per run on top
of the earlier ones, and the part written by hand kept byte for byte."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.results_file import (
    KEPT,
    LATEST,
    PREAMBLE,
    RUNS,
    RUNS_COLUMNS,
    RUNS_KEPT,
    Run,
    earlier_lines,
    kept_part,
    missed,
    missed_targets,
    results_file,
    run_line,
    targets_met,
    write_results_file,
)
from bench.table import Measurement, Target, evaluate

COMMITTED = Path(__file__).resolve().parents[3] / "bench" / "RESULTS.md"
STARTED = datetime(2026, 12, 7, 18, 5, 9, tzinfo=UTC)
MACHINE = "2 cores (AMD EPYC), load average at start 0.5; servers embedded; scale 0.1, 3 runs"

DECISION = Measurement(
    "single decision, 32 connections",
    "throughput",
    "req/s",
    (2700.0, 2800.0, 2764.0),
    Target("ratio_min", 0.9),
    "B-read",
    (3900.0, 3879.0, 3800.0),
)
STRETCH = Measurement(
    DECISION.scenario,
    "throughput",
    "req/s",
    DECISION.ours,
    Target("ratio_min", 1.0, "stretch"),
    "B-read",
    DECISION.baseline,
)
HISTORY = Measurement("subject history, 1 connection", "p99", "ms", (10.5,), Target("max", 20))
E2E = Measurement("end to end", "p99", "ms", (475.0, 480.0), Target("max", 100))
BATCH = Measurement("batch decision", "throughput", "recipients/s", (), Target("ratio_min", 0.8))
FLOODED = Measurement("flooded", "p99", "ms", (1.0,), Target("max", 20), error_share=0.5)
INFO = Measurement("memory: API over the whole run", "peak RSS", "MB", (105.0,))
OUTCOMES = [evaluate(m) for m in (DECISION, STRETCH, HISTORY, E2E, BATCH, FLOODED, INFO)]


def run(command: str = "python -m bench.run --scale 0.1 --runs 3", at: int = 0) -> Run:
    return Run(STARTED + timedelta(hours=at), command, "abc1234", MACHINE)


@pytest.mark.parametrize(
    ("measurement", "expected"),
    [
        (DECISION, "single decision, 32 connections, throughput: 0.71 x B-read"),
        (STRETCH, "single decision, 32 connections, throughput (stretch): 0.71 x B-read"),
        (E2E, "end to end, p99: 478 ms"),
        (BATCH, "batch decision, throughput: n/a"),
        (FLOODED, "flooded, p99: invalid"),
    ],
)
def test_a_missed_line_says_what_and_how_far_off(measurement: Measurement, expected: str) -> None:
    assert missed(evaluate(measurement)) == expected


def test_targets_met_counts_the_lines_with_a_target_and_those_not_measured() -> None:
    assert targets_met(OUTCOMES) == "1 of 5, 1 not measured"
    assert targets_met([evaluate(m) for m in (DECISION, HISTORY, INFO)]) == "1 of 2"
    assert targets_met([evaluate(INFO)]) == "0 of 0"


def test_only_lines_measured_and_short_of_their_target_are_listed_as_missed() -> None:
    listed = [o.measurement for o in missed_targets(OUTCOMES)]
    assert listed == [DECISION, STRETCH, E2E, FLOODED]


def test_the_first_run_writes_the_whole_file_without_a_kept_part() -> None:
    text = results_file("", run(), OUTCOMES)
    assert text.startswith(f"# Benchmark results\n\n{PREAMBLE}\n\n{LATEST}\n\n")
    assert "2026-12-07 18:05 UTC, `python -m bench.run --scale 0.1 --runs 3`, code abc1234." in text
    assert f"{MACHINE}.\n" in text
    assert "| single decision, 32 connections | throughput (req/s) | 2,764 |" in text
    assert "\n- end to end, p99: 478 ms\n" in text  # the misses, listed under the table
    assert earlier_lines(text) == [run_line(run(), OUTCOMES)]
    assert kept_part(text) == ""
    assert text.endswith(run_line(run(), OUTCOMES) + "\n")


def test_a_run_line_has_a_cell_per_column_even_when_the_command_has_a_bar() -> None:
    line = run_line(run('python -m bench.run --only "replay|growth"'), OUTCOMES)
    cells = line.replace("\\|", "").split("|")[1:-1]
    assert len(cells) == len(RUNS_COLUMNS)
    assert cells[0].strip() == "2026-12-07 18:05"
    assert cells[4].strip() == "1 of 5, 1 not measured"


def test_a_run_on_the_committed_file_keeps_its_earlier_lines_and_hand_written_part() -> None:
    committed = COMMITTED.read_text(encoding="utf-8")
    text = results_file(committed, run(), OUTCOMES)
    assert kept_part(text) == kept_part(committed)
    assert earlier_lines(text) == [run_line(run(), OUTCOMES), *earlier_lines(committed)]
    assert "No run of `make bench` has written this section yet" not in text
    assert results_file(text, run(at=1), OUTCOMES).count(KEPT) == 1


def test_the_committed_file_is_in_the_shape_the_writer_keeps() -> None:
    committed = COMMITTED.read_text(encoding="utf-8")
    assert committed.startswith(f"# Benchmark results\n\n{PREAMBLE}\n\n{LATEST}\n\n")
    assert f"\n{RUNS}\n\n| " + " | ".join(RUNS_COLUMNS) + " |\n" in committed
    assert all(line.count(" | ") == len(RUNS_COLUMNS) - 1 for line in earlier_lines(committed))
    kept = kept_part(committed)
    for heading in (KEPT, "### Results", "### What made it faster"):
        assert f"{heading}\n" in kept
    assert f"the last {RUNS_KEPT})" in PREAMBLE


@given(earlier=st.integers(min_value=0, max_value=RUNS_KEPT + 5))
def test_runs_are_listed_newest_first_and_only_the_last_ones_kept(earlier: int) -> None:
    text = "# Benchmark results\n\n" + KEPT + "\n\nby hand | with bars\n"
    for hour in range(earlier):
        text = results_file(text, run(at=hour), OUTCOMES)
    text = results_file(text, run(at=earlier), OUTCOMES)
    lines = earlier_lines(text)
    newest = range(earlier, max(earlier - RUNS_KEPT, -1), -1)
    assert lines == [run_line(run(at=hour), OUTCOMES) for hour in newest]
    assert kept_part(text) == KEPT + "\n\nby hand | with bars\n"


def test_write_results_file_creates_the_file_then_rewrites_it(tmp_path: Path) -> None:
    path = tmp_path / "RESULTS.md"
    write_results_file(path, run(), OUTCOMES)
    write_results_file(path, run(at=1), OUTCOMES[:1])
    text = path.read_text(encoding="utf-8")
    assert earlier_lines(text) == [run_line(run(at=1), OUTCOMES[:1]), run_line(run(), OUTCOMES)]
