"""The in-process metric registry: exact Prometheus text, cumulative buckets, label escaping."""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.telemetry.metric_registry import (
    Counter,
    Histogram,
    MetricError,
    Registry,
    escape_help,
    escape_label_value,
    format_value,
)


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        ("plain", "plain"),
        ('say "hi"', 'say \\"hi\\"'),
        ("back\\slash", "back\\\\slash"),
        ("two\nlines", "two\\nlines"),
        ('\\"\n', '\\\\\\"\\n'),
        ("", ""),
        ("ünï/{code}", "ünï/{code}"),
    ],
)
def test_label_values_escape_backslash_quote_and_newline(value: str, escaped: str) -> None:
    assert escape_label_value(value) == escaped


@pytest.mark.parametrize(
    ("text", "escaped"),
    [("a \\ b", "a \\\\ b"), ("one\ntwo", "one\\ntwo"), ('keeps "quotes"', 'keeps "quotes"')],
)
def test_help_escapes_backslash_and_newline_only(text: str, escaped: str) -> None:
    assert escape_help(text) == escaped


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "0"),
        (3, "3"),
        (2.0, "2"),
        (0.25, "0.25"),
        (1e-9, "1e-09"),
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
        (math.nan, "NaN"),
        (2.0**60, repr(2.0**60)),
    ],
)
def test_sample_values(value: float, text: str) -> None:
    assert format_value(value) == text


def test_counter_text_is_exact_and_sorted_by_labels() -> None:
    registry = Registry()
    total = registry.counter("demo_total", "Things done.", ("kind", "ok"))
    total.inc("b", "true")
    total.inc("a", "false", amount=2)
    total.inc("b", "true")
    assert registry.render().splitlines() == [
        "# HELP demo_total Things done.",
        "# TYPE demo_total counter",
        'demo_total{kind="a",ok="false"} 2',
        'demo_total{kind="b",ok="true"} 2',
    ]
    assert total.value("b", "true") == 2 and total.value("c", "true") == 0


def test_histogram_text_is_cumulative_with_inf_sum_and_count() -> None:
    registry = Registry()
    seconds = registry.histogram("demo_seconds", "How long.", ("route",), buckets=(0.1, 1.0))
    for value in (0.05, 0.1, 0.5, 3.0):
        seconds.observe(value, "/v1/x/{id}")
    seconds.observe(0.2, "/a")
    assert registry.render().splitlines() == [
        "# HELP demo_seconds How long.",
        "# TYPE demo_seconds histogram",
        'demo_seconds_bucket{route="/a",le="0.1"} 0',
        'demo_seconds_bucket{route="/a",le="1.0"} 1',
        'demo_seconds_bucket{route="/a",le="+Inf"} 1',
        'demo_seconds_sum{route="/a"} 0.2',
        'demo_seconds_count{route="/a"} 1',
        'demo_seconds_bucket{route="/v1/x/{id}",le="0.1"} 2',
        'demo_seconds_bucket{route="/v1/x/{id}",le="1.0"} 3',
        'demo_seconds_bucket{route="/v1/x/{id}",le="+Inf"} 4',
        'demo_seconds_sum{route="/v1/x/{id}"} 3.65',
        'demo_seconds_count{route="/v1/x/{id}"} 4',
    ]
    assert seconds.count("/v1/x/{id}") == 4


def test_a_histogram_without_labels_and_an_explicit_inf_bound() -> None:
    registry = Registry()
    registry.histogram("bare_seconds", "x", buckets=(1.0, math.inf)).observe(7.5)
    assert registry.render().splitlines()[2:] == [
        'bare_seconds_bucket{le="1.0"} 0',
        'bare_seconds_bucket{le="+Inf"} 1',
        "bare_seconds_sum 7.5",
        "bare_seconds_count 1",
    ]


def test_metrics_without_samples_still_say_what_they_are() -> None:
    registry = Registry()
    registry.counter("a_total", "first", ("x",))
    registry.histogram("b_seconds", "second\nline")
    assert registry.render() == (
        "# HELP a_total first\n# TYPE a_total counter\n"
        "# HELP b_seconds second\\nline\n# TYPE b_seconds histogram\n"
    )
    assert Registry().render() == ""


@pytest.mark.parametrize(
    "make",
    [
        lambda: Counter("bad-name_total", "x"),
        lambda: Counter("no_suffix", "x"),
        lambda: Counter("ok_total", "x", ("bad-label",)),
        lambda: Counter("ok_total", "x", ("__reserved",)),
        lambda: Counter("ok_total", "x", ("a", "a")),
        lambda: Histogram("ok_seconds", "x", ("le",)),
        lambda: Histogram("ok_seconds", "x", buckets=()),
        lambda: Histogram("ok_seconds", "x", buckets=(math.nan,)),
    ],
)
def test_names_prometheus_refuses_are_refused(make: Callable[[], object]) -> None:
    with pytest.raises(MetricError):
        make()


def test_wrong_label_counts_and_negative_increments_are_refused() -> None:
    counter = Counter("x_total", "x", ("a", "b"))
    with pytest.raises(MetricError, match="takes 2 label values"):
        counter.inc("only-one")
    with pytest.raises(MetricError, match="only goes up"):
        counter.inc("a", "b", amount=-1)
    registry = Registry()
    registry.counter("x_total", "x")
    with pytest.raises(MetricError, match="already registered"):
        registry.counter("x_total", "again")


_SAMPLE = re.compile(r'^(?P<name>[a-z_]+)\{k="(?P<value>(?:[^"\\\n]|\\\\|\\"|\\n)*)"\} (?P<n>\d+)$')


def _unescape(escaped: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), escaped)


@given(st.text(max_size=40))
def test_any_label_value_renders_on_one_line_and_parses_back(value: str) -> None:
    registry = Registry()
    registry.counter("t_total", "t", ("k",)).inc(value, amount=3)
    # the text format separates lines by \n only (a \r in a value is kept as it is)
    sample = registry.render().removesuffix("\n").split("\n")[2:]
    assert len(sample) == 1, "a label value must never break the line"
    parsed = _SAMPLE.match(sample[0])
    assert parsed is not None, sample[0]
    assert _unescape(parsed["value"]) == value and parsed["n"] == "3"


@given(
    st.lists(st.floats(0, 100, allow_nan=False), max_size=50),
    st.lists(st.floats(0.001, 50, allow_nan=False), min_size=1, max_size=6, unique=True),
)
def test_buckets_are_cumulative_and_end_with_every_observation(
    values: list[float], bounds: list[float]
) -> None:
    histogram = Histogram("h_seconds", "h", buckets=bounds)
    for value in values:
        histogram.observe(value)
    if not values:
        assert histogram.samples() == []
        return
    lines = histogram.samples()
    counts = [int(line.rsplit(" ", 1)[1]) for line in lines if "_bucket" in line]
    assert counts == sorted(counts), "cumulative counts never go down"
    for bound, count in zip(sorted(bounds), counts, strict=False):
        assert count == sum(1 for v in values if v <= bound)
    assert counts[-1] == len(values) and lines[-1] == f"h_seconds_count {len(values)}"
