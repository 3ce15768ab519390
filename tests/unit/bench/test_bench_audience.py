"""The audience line of the benchmark: the counts read from the stream's summary, and the
table's lines: subjects per second against B-copy-audience, at least half its rate."""

from __future__ import annotations

import pytest

from bench.audience_scenario import (
    AudienceSamples,
    Streamed,
    audience_path,
    audience_rows,
    considered_of,
)
from bench.report import Collected, measurements
from bench.sizes import sizes_for
from bench.table import evaluate
from services.api.audience_rows import AudienceAsk, end_lines, header_line, id_lines
from services.rules.audience import AudienceTally
from tests.unit.event_log import CATALOGUE


def test_the_rate_counts_every_subject_considered_not_only_those_written() -> None:
    assert Streamed(considered=1000, rows=400, seconds=0.5).rate == 2000
    assert Streamed(considered=1000, rows=400, seconds=0).rate == 0


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_the_counts_come_from_the_summary_the_api_writes(fmt: str) -> None:
    purpose = CATALOGUE.get("newsletter")
    assert purpose is not None
    shape = AudienceAsk(purpose, "email", fmt, None, True, None)
    tally = AudienceTally(2)
    tally.left_out.update({"withdrawn": 3, "objected": 1})
    answer = header_line(shape) + id_lines(shape, ["a", "b"]) + end_lines(shape, tally, 2, "t")
    lines = answer.decode().splitlines()
    summary = lines[-1:] if fmt == "jsonl" else lines[-4:]
    assert considered_of(fmt, summary) == (6, 2)


def test_the_path_asks_for_the_summary() -> None:
    assert "reasons=true" in audience_path("csv") and "format=csv" in audience_path("csv")


def test_a_line_per_format_against_the_copy_with_the_issues_target() -> None:
    samples = AudienceSamples(copied=[400_000.0, 380_000.0, 420_000.0])
    for rate in (300_000.0, 100_000.0, 310_000.0):
        samples.add("jsonl", Streamed(int(rate), 600, 1.0))
    samples.add("csv", Streamed(150_000, 600, 1.0))
    jsonl, csv_line = (evaluate(m) for m in audience_rows(samples))
    assert jsonl.measurement.scenario == "audience streamed over HTTP, JSON lines"
    assert jsonl.measurement.unit == "subjects/s"
    assert jsonl.median == 300_000 and jsonl.baseline_median == 400_000
    assert jsonl.ratio == pytest.approx(0.75) and jsonl.verdict == "pass"
    assert csv_line.ratio == pytest.approx(0.375) and csv_line.verdict == "FAIL"
    assert jsonl.measurement.size == "150,000 of 1,000,000 subjects"
    assert jsonl.measurement.reduced
    assert jsonl.measurement.note == "600 of 150,000 subjects allowed and written"


def test_a_run_without_the_audience_has_its_lines_unmeasured() -> None:
    lines = [evaluate(m) for m in measurements(Collected(), sizes_for(0.01))]
    audience = [o for o in lines if o.measurement.scenario.startswith("audience")]
    assert [o.verdict for o in audience] == ["n/a", "n/a"]
    assert all(o.measurement.size == "" for o in audience)
