"""bench/RESULTS.md, the committed record of `make bench`: each run rewrites the table of the
latest run and adds its line to the runs' summary; the part kept by hand below is left as it is.

Pure: the new file is a function of the old one and the run, so it is tested without servers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

from bench.table import Outcome, fmt, md_cell, misses, render_markdown

TITLE: Final = "# Benchmark results"
LATEST: Final = "## Latest run"
RUNS: Final = "## Runs"
#: everything from this heading on is written by hand and kept by every run
KEPT: Final = "## Measurements kept from earlier runs"
#: lines of the runs' summary kept, newest first: enough to see a trend, small enough to read
RUNS_KEPT: Final = 20
RUNS_COLUMNS: Final = ("Date (UTC)", "Command", "Code", "Machine", "Targets met", "Missed")

PREAMBLE: Final = """\
`make bench` writes this file at the end of every run (`bench/results_file.py`): the table of
the latest run, and one line per run under "Runs", newest first (the last 20). Absolute
figures do not travel between machines; compare the ratios, each taken against a baseline in
the same run. What each line measures and how to read the table:
`docs/developers/benchmarks.md`. Everything from "Measurements kept from earlier runs" on is
written by hand, and every run keeps it as it is."""


@dataclass(frozen=True, slots=True)
class Run:
    """What a run says about itself, beside its table."""

    started: datetime
    command: str
    #: the commit the run measured (`abc1234`, `abc1234 (modified)`), or "unknown"
    code: str
    #: the machine, the servers and the run's sizes, as the run printed them
    machine: str


def targets_met(outcomes: Sequence[Outcome]) -> str:
    """`8 of 13`, and how many target lines the run did not measure (`--only`, a failure)."""
    verdicts = [o.verdict for o in outcomes]
    judged = sum(v in ("pass", "FAIL", "invalid") for v in verdicts)
    unmeasured = verdicts.count("n/a")
    said = f"{verdicts.count('pass')} of {judged}"
    return f"{said}, {unmeasured} not measured" if unmeasured else said


def missed_targets(outcomes: Sequence[Outcome]) -> list[Outcome]:
    """The lines measured and short of their target (a line not measured is only counted)."""
    return [o for o in misses(outcomes) if o.verdict != "n/a"]


def missed(o: Outcome) -> str:
    """A missed line in a few words: what, and how far off (ratio or figure, or why not)."""
    m = o.measurement
    label = f" ({m.target.label})" if m.target.label else ""
    if o.verdict != "FAIL":
        found = o.verdict
    elif m.target.kind in ("ratio_min", "ratio_max") and o.ratio is not None:
        found = f"{o.ratio:.2f} x {m.baseline_name}"
    else:
        found = f"{fmt(o.median, m.unit)} {m.unit}"
    return f"{m.scenario}, {m.figure}{label}: {found}"


def run_line(run: Run, outcomes: Sequence[Outcome]) -> str:
    row = [
        f"{run.started:%Y-%m-%d %H:%M}",
        f"`{run.command}`",
        run.code,
        run.machine,
        targets_met(outcomes),
        "; ".join(missed(o) for o in missed_targets(outcomes)) or "-",
    ]
    return "| " + " | ".join(md_cell(cell) for cell in row) + " |"


def latest_section(run: Run, outcomes: Sequence[Outcome]) -> str:
    said = f"{run.started:%Y-%m-%d %H:%M} UTC, `{run.command}`, code {run.code}."
    lines = [LATEST, "", said, f"{run.machine}.", "", render_markdown(outcomes)]
    if missed_targets(outcomes):
        lines += ["", "Missed:", "", *(f"- {missed(o)}" for o in missed_targets(outcomes))]
    return "\n".join(lines)


def _section(text: str, heading: str) -> list[str]:
    """The lines under a level-2 heading, up to the next one (none when it is absent)."""
    lines = text.splitlines()
    if heading not in lines:
        return []
    start = lines.index(heading) + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("## ")), len(lines))
    return lines[start:end]


def earlier_lines(text: str) -> list[str]:
    """The rows of the runs' summary in a results file, newest first, without its header."""
    rows = [line for line in _section(text, RUNS) if line.startswith("|")]
    return rows[2:]


def kept_part(text: str) -> str:
    """The hand-written part of a results file, from its heading on (empty when there is none)."""
    lines = text.splitlines(keepends=True)
    at = next((i for i, line in enumerate(lines) if line.rstrip("\r\n") == KEPT), len(lines))
    return "".join(lines[at:])


def results_file(previous: str, run: Run, outcomes: Sequence[Outcome]) -> str:
    """The new file: the latest run, its line on top of the runs' summary, the kept part."""
    rows = [run_line(run, outcomes), *earlier_lines(previous)][:RUNS_KEPT]
    runs = [
        RUNS,
        "",
        "| " + " | ".join(RUNS_COLUMNS) + " |",
        "|" + "|".join(" --- " for _ in RUNS_COLUMNS) + "|",
        *rows,
    ]
    parts = [TITLE, PREAMBLE, latest_section(run, outcomes), "\n".join(runs)]
    kept = kept_part(previous)
    return "\n\n".join(parts) + "\n" + (f"\n{kept}" if kept else "")


def write_results_file(path: Path, run: Run, outcomes: Sequence[Outcome]) -> None:
    previous = path.read_text(encoding="utf-8") if path.exists() else ""
    path.write_text(results_file(previous, run, outcomes), encoding="utf-8")
