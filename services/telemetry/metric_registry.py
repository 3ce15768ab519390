"""A small in-process metric registry: labelled counters and histograms, rendered in the
Prometheus text exposition format 0.0.4.

The ledger needs two metric kinds and one output format, so it keeps this instead of a
dependency with a global default registry. Updates happen on the event loop thread (the API is
one asyncio process), so there are no locks. Every label set is created by the code, never by
a request, so the number of series stays bounded.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Iterable, Sequence
from typing import Final

_NAME: Final = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL: Final = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")

#: seconds; suits an API whose answers take milliseconds and whose waits are bounded by seconds
LATENCY_BUCKETS: Final = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


class MetricError(ValueError):
    """A metric or label name Prometheus would not accept, or the wrong number of labels."""


def escape_label_value(value: str) -> str:
    """Backslash, double quote and line feed escaped, as the text format asks."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: float) -> str:
    """A sample value: whole numbers without a fraction, infinities as +Inf/-Inf."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 2**53:
        return str(int(value))
    return repr(value)


def _labels(names: Sequence[str], values: Sequence[str]) -> str:
    if not names:
        return ""
    pairs = ",".join(f'{n}="{escape_label_value(v)}"' for n, v in zip(names, values, strict=True))
    return "{" + pairs + "}"


class _Metric:
    kind: str = ""

    def __init__(self, name: str, help_text: str, labels: Sequence[str]) -> None:
        if not _NAME.fullmatch(name):
            raise MetricError(f"metric name {name!r} is not [a-zA-Z_:][a-zA-Z0-9_:]*")
        for label in labels:
            if not _LABEL.fullmatch(label) or label.startswith("__"):
                raise MetricError(f"label name {label!r} of {name} is not a Prometheus label")
        if len(set(labels)) != len(labels):
            raise MetricError(f"label names of {name} repeat")
        self.name = name
        self.help = help_text
        self.labels = tuple(labels)

    def _key(self, values: Sequence[str]) -> tuple[str, ...]:
        if len(values) != len(self.labels):
            raise MetricError(
                f"{self.name} takes {len(self.labels)} label values ({', '.join(self.labels)}),"
                f" got {len(values)}"
            )
        return tuple(values)

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {escape_help(self.help)}", f"# TYPE {self.name} {self.kind}"]

    def samples(self) -> list[str]:
        raise NotImplementedError


class Counter(_Metric):
    """A total that only goes up, one per label set."""

    kind = "counter"

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        if not name.endswith("_total"):
            raise MetricError(f"counter {name!r} must end in _total")
        super().__init__(name, help_text, labels)
        self._values: dict[tuple[str, ...], float] = {}

    def inc(self, *label_values: str, amount: float = 1) -> None:
        if amount < 0 or math.isnan(amount):
            raise MetricError(f"{self.name} only goes up; got {amount!r}")
        key = self._key(label_values)
        self._values[key] = self._values.get(key, 0) + amount

    def value(self, *label_values: str) -> float:
        return self._values.get(self._key(label_values), 0)

    def samples(self) -> list[str]:
        return [
            f"{self.name}{_labels(self.labels, key)} {format_value(value)}"
            for key, value in sorted(self._values.items())
        ]


class _Series:
    """One label set of a histogram: the count in each bucket (not cumulative), and the sum."""

    __slots__ = ("counts", "total")

    def __init__(self, buckets: int) -> None:
        self.counts = [0] * (buckets + 1)  # the last one is +Inf
        self.total = 0.0


class Histogram(_Metric):
    """Observations sorted into buckets by upper bound, rendered cumulatively with +Inf, _sum
    and _count."""

    kind = "histogram"

    def __init__(
        self,
        name: str,
        help_text: str,
        labels: Sequence[str] = (),
        buckets: Iterable[float] = LATENCY_BUCKETS,
    ) -> None:
        if "le" in labels:
            raise MetricError(f"histogram {name} cannot have a label named le")
        super().__init__(name, help_text, labels)
        bounds = sorted(set(buckets))
        if not bounds or any(math.isnan(b) for b in bounds):
            raise MetricError(f"histogram {name} needs bucket bounds")
        self.bounds = tuple(b for b in bounds if not math.isinf(b))
        self._series: dict[tuple[str, ...], _Series] = {}

    def observe(self, value: float, *label_values: str) -> None:
        key = self._key(label_values)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Series(len(self.bounds))
        # an observation equal to a bound belongs to that bucket (le: less or equal)
        series.counts[bisect.bisect_left(self.bounds, value)] += 1
        series.total += value

    def count(self, *label_values: str) -> int:
        series = self._series.get(self._key(label_values))
        return sum(series.counts) if series else 0

    def samples(self) -> list[str]:
        lines: list[str] = []
        for key, series in sorted(self._series.items()):
            running = 0
            for bound, count in zip((*self.bounds, math.inf), series.counts, strict=True):
                running += count
                le = _labels((*self.labels, "le"), (*key, format_bound(bound)))
                lines.append(f"{self.name}_bucket{le} {running}")
            labels = _labels(self.labels, key)
            lines.append(f"{self.name}_sum{labels} {format_value(series.total)}")
            lines.append(f"{self.name}_count{labels} {running}")
        return lines


def format_bound(bound: float) -> str:
    """A bucket bound as `le` shows it: 0.005, 1.0, +Inf (as projections/metrics.py does)."""
    return "+Inf" if math.isinf(bound) else repr(float(bound))


class Registry:
    """The metrics of one process, in the order they were made."""

    def __init__(self) -> None:
        self._metrics: dict[str, _Metric] = {}

    def _add(self, metric: _Metric) -> None:
        if metric.name in self._metrics:
            raise MetricError(f"metric {metric.name} is already registered")
        self._metrics[metric.name] = metric

    def counter(self, name: str, help_text: str, labels: Sequence[str] = ()) -> Counter:
        metric = Counter(name, help_text, labels)
        self._add(metric)
        return metric

    def histogram(
        self,
        name: str,
        help_text: str,
        labels: Sequence[str] = (),
        buckets: Iterable[float] = LATENCY_BUCKETS,
    ) -> Histogram:
        metric = Histogram(name, help_text, labels, buckets)
        self._add(metric)
        return metric

    def render(self) -> str:
        """Every metric with its HELP and TYPE lines, even before its first sample."""
        lines: list[str] = []
        for metric in self._metrics.values():
            lines += metric.header()
            lines += metric.samples()
        return "\n".join(lines) + "\n" if lines else ""
