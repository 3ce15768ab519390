"""The result table: medians, spreads, ratios against the baseline and pass/fail, as pure
functions, rendered as text for the terminal, Markdown and JSON for bench/results/.

A ratio is always ours / baseline, both medians of samples taken in the same run, so that
noise common to both (a busy machine) cancels out.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

TargetKind = Literal["ratio_min", "ratio_max", "max", "min", "info"]


@dataclass(frozen=True, slots=True)
class Target:
    """What a figure must reach: a bound on the ratio to the baseline, or on the figure itself."""

    kind: TargetKind
    bound: float = 0.0
    #: how the bound reads in the table when it is not plain (e.g. "stretch")
    label: str = ""

    def describe(self, unit: str) -> str:
        if self.kind == "info":
            return self.label or "-"
        if self.kind == "ratio_min":
            text = f">= {self.bound:g} x baseline"
        elif self.kind == "ratio_max":
            text = f"<= {self.bound:g} x baseline"
        elif self.kind == "max":
            text = f"<= {self.bound:g} {unit}".rstrip()
        else:
            text = f">= {self.bound:g} {unit}".rstrip()
        return f"{text} ({self.label})" if self.label else text


INFO: Final = Target("info")
#: the share of failed requests above which a figure says nothing about the ledger
ERROR_LIMIT: Final = 0.01


@dataclass(frozen=True, slots=True)
class Measurement:
    """One line of the table: a scenario's figure, our samples and the baseline's."""

    scenario: str
    figure: str
    unit: str
    ours: tuple[float, ...]
    target: Target = INFO
    baseline_name: str = ""
    baseline: tuple[float, ...] = ()
    #: the data size it ran at; says "reduced" when smaller than the issue's
    size: str = ""
    reduced: bool = False
    note: str = ""
    #: failed or non-2xx requests as a share of all: above ERROR_LIMIT the figure is invalid
    error_share: float = 0.0


@dataclass(frozen=True, slots=True)
class Outcome:
    measurement: Measurement
    median: float | None
    spread_pct: float | None
    baseline_median: float | None
    ratio: float | None
    verdict: str


def median(samples: Sequence[float]) -> float | None:
    return statistics.median(samples) if samples else None


def spread_pct(samples: Sequence[float]) -> float | None:
    """Half the range of the samples, as a percentage of their median (0 for one sample)."""
    mid = median(samples)
    if mid is None or mid == 0:
        return None
    return (max(samples) - min(samples)) / 2 / abs(mid) * 100


def ratio(ours: float | None, baseline: float | None) -> float | None:
    if ours is None or baseline is None or baseline == 0:
        return None
    return ours / baseline


def verdict(target: Target, value: float | None, ratio_value: float | None) -> str:
    """ "pass", "FAIL", "-" (no target) or "n/a" (nothing to compare: a figure is missing)."""
    if target.kind == "info":
        return "-"
    compared = ratio_value if target.kind in ("ratio_min", "ratio_max") else value
    if compared is None:
        return "n/a"
    ok = (
        compared >= target.bound
        if target.kind in ("ratio_min", "min")
        else compared <= target.bound
    )
    return "pass" if ok else "FAIL"


def evaluate(m: Measurement) -> Outcome:
    ours, base = median(m.ours), median(m.baseline)
    r = ratio(ours, base)
    judged = "invalid" if m.error_share > ERROR_LIMIT else verdict(m.target, ours, r)
    return Outcome(m, ours, spread_pct(m.ours), base, r, judged)


def fmt(value: float | None, unit: str = "") -> str:
    """Rates as whole numbers with separators, milliseconds and megabytes with precision that
    suits their size."""
    if value is None:
        return "-"
    if unit.endswith("/s") or abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def median_text(values: Sequence[float]) -> str:
    """The upper median of the samples as a whole number, for a note."""
    ordered = sorted(values)
    return f"{ordered[len(ordered) // 2]:,.0f}"


COLUMNS: Final = (
    "scenario",
    "figure",
    "ours (median)",
    "spread",
    "baseline",
    "baseline median",
    "ratio",
    "target",
    "result",
    "size",
)


def cells(o: Outcome) -> list[str]:
    m = o.measurement
    figure = f"{m.figure} ({m.unit})" if m.unit else m.figure
    spread = "-" if o.spread_pct is None else f"±{o.spread_pct:.0f}%"
    return [
        m.scenario,
        figure,
        fmt(o.median, m.unit),
        spread,
        m.baseline_name or "-",
        fmt(o.baseline_median, m.unit),
        "-" if o.ratio is None else f"{o.ratio:.2f}",
        m.target.describe(m.unit),
        o.verdict,
        m.size + (" (reduced)" if m.reduced else ""),
    ]


def render_text(outcomes: Sequence[Outcome]) -> str:
    rows = [list(COLUMNS), *(cells(o) for o in outcomes)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    numeric = {2, 3, 5, 6}
    lines = []
    for n, row in enumerate(rows):
        parts = [
            cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        lines.append("  ".join(parts).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(outcomes: Sequence[Outcome]) -> str:
    lines = [
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join(" --- " for _ in COLUMNS) + "|",
    ]
    lines += ["| " + " | ".join(md_cell(c) for c in cells(o)) + " |" for o in outcomes]
    notes = [
        f"- {o.measurement.scenario}, {o.measurement.figure}: {o.measurement.note}"
        for o in outcomes
        if o.measurement.note
    ]
    if notes:
        lines += ["", "Notes:", "", *notes]
    return "\n".join(lines)


def to_json(outcomes: Sequence[Outcome]) -> list[dict[str, Any]]:
    out = []
    for o in outcomes:
        m = o.measurement
        out.append(
            {
                "scenario": m.scenario,
                "figure": m.figure,
                "unit": m.unit,
                "samples": list(m.ours),
                "median": o.median,
                "spread_pct": o.spread_pct,
                "baseline": m.baseline_name or None,
                "baseline_samples": list(m.baseline),
                "baseline_median": o.baseline_median,
                "ratio": o.ratio,
                "target": {"kind": m.target.kind, "bound": m.target.bound, "label": m.target.label},
                "result": o.verdict,
                "size": m.size,
                "reduced": m.reduced,
                "note": m.note,
            }
        )
    return out


def misses(outcomes: Sequence[Outcome]) -> list[Outcome]:
    """The lines whose target was not met or could not be judged."""
    return [o for o in outcomes if o.verdict in ("FAIL", "n/a", "invalid")]
