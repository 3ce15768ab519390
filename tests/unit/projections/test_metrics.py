"""The unsubscribe metric: which events count, the buckets, and the exact Prometheus text."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from projections import metrics
from schemas import events as ev
from schemas.events import Event, Source

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def event(type_: str, method: str, ago_ms: int) -> Event:
    at = NOW - timedelta(milliseconds=ago_ms)
    return Event(type_, uuid.uuid4(), "s1", at, at, Source(method=method))


@pytest.mark.parametrize(
    ("type_", "method", "counted"),
    [
        (ev.CONSENT_WITHDRAWN, "unsubscribe_link", True),
        (ev.DIRECT_MARKETING_OBJECTED, "unsubscribe_link", True),
        (ev.CONSENT_WITHDRAWN, "preference_center", False),
        (ev.CONSENT_WITHDRAWN, "api", False),
        (ev.CONSENT_GRANTED, "unsubscribe_link", False),
    ],
)
def test_only_denying_unsubscribe_link_events_count(type_: str, method: str, counted: bool) -> None:
    values = metrics.unsubscribe_latencies([event(type_, method, 40)], NOW)
    assert values == ([0.04] if counted else [])


def test_a_clock_behind_counts_as_zero() -> None:
    assert metrics.unsubscribe_latencies(
        [event(ev.CONSENT_WITHDRAWN, "unsubscribe_link", -5)], NOW
    ) == [0.0]


@given(st.lists(st.floats(0, 1e6, allow_nan=False)))
def test_buckets_keep_every_observation_once(values: list[float]) -> None:
    buckets = metrics.bucket(values)
    assert sum(n for n, _ in buckets.values()) == len(values)
    assert math.isclose(sum(s for _, s in buckets.values()), sum(values), abs_tol=1e-6)
    for bound, (n, total) in buckets.items():
        # a float sum may round past the bound (six 0.01 add up to 0.06000000000000001)
        assert n > 0 and (total <= bound * n or math.isclose(total, bound * n))


def test_prometheus_text_is_cumulative_and_exact() -> None:
    histograms = {metrics.UNSUBSCRIBE_SECONDS: metrics.bucket([0.004, 0.02, 0.02, 99.0])}
    text = metrics.prometheus_text(histograms)
    name = metrics.UNSUBSCRIBE_SECONDS
    assert text.splitlines()[1:] == [
        f"# TYPE {name} histogram",
        f'{name}_bucket{{le="0.005"}} 1',
        f'{name}_bucket{{le="0.01"}} 1',
        f'{name}_bucket{{le="0.025"}} 3',
        f'{name}_bucket{{le="0.05"}} 3',
        f'{name}_bucket{{le="0.1"}} 3',
        f'{name}_bucket{{le="0.25"}} 3',
        f'{name}_bucket{{le="0.5"}} 3',
        f'{name}_bucket{{le="1.0"}} 3',
        f'{name}_bucket{{le="2.5"}} 3',
        f'{name}_bucket{{le="5.0"}} 3',
        f'{name}_bucket{{le="10.0"}} 3',
        f'{name}_bucket{{le="30.0"}} 3',
        f'{name}_bucket{{le="+Inf"}} 4',
        f"{name}_sum 99.044",
        f"{name}_count 4",
    ]
    assert text.startswith(f"# HELP {name} ") and text.endswith("\n")


def test_an_empty_histogram_is_still_shown() -> None:
    text = metrics.prometheus_text({metrics.UNSUBSCRIBE_SECONDS: {}})
    assert f"{metrics.UNSUBSCRIBE_SECONDS}_count 0" in text


def test_batch_sizes_have_their_own_bounds() -> None:
    assert metrics.bounds_of(metrics.BATCH_RECORDS) != metrics.BUCKETS
    assert metrics.bounds_of(metrics.BATCH_SECONDS) == metrics.BUCKETS
    buckets = metrics.bucket([1, 40, 500, 500, 2001], metrics.bounds_of(metrics.BATCH_RECORDS))
    assert buckets == {1: (1, 1.0), 50: (1, 40.0), 500: (2, 1000.0), 5000: (1, 2001.0)}
    text = metrics.prometheus_text({metrics.BATCH_RECORDS: buckets})
    name = metrics.BATCH_RECORDS
    assert f'{name}_bucket{{le="500"}} 4' in text.splitlines()
    assert f'{name}_bucket{{le="0.005"}}' not in text
    assert f"{name}_count 5" in text.splitlines()


def test_projector_text_is_exact() -> None:
    from projections.freshness import PartitionFreshness
    from projections.log_loss import AHEAD_OF_LOG, LogLoss

    partitions = [
        PartitionFreshness(0, 10, 12, 0.25),
        PartitionFreshness(1, 7, None, None),
    ]
    stops = [LogLoss(1, AHEAD_OF_LOG, 7, 0, 3)]
    samples = [
        line
        for line in metrics.projector_text(partitions, stops, (3, 1)).splitlines()
        if not line.startswith("# HELP")
    ]
    assert samples == [
        "# TYPE ledger_projector_lag_records gauge",
        'ledger_projector_lag_records{partition="0"} 2',
        "# TYPE ledger_projector_behind_seconds gauge",
        'ledger_projector_behind_seconds{partition="0"} 0.25',
        'ledger_projector_behind_seconds{partition="1"} +Inf',
        "# TYPE ledger_projector_stopped gauge",
        "ledger_projector_stopped 1",
        "# TYPE ledger_projector_log_loss gauge",
        'ledger_projector_log_loss{partition="1",problem="ahead_of_log"} 1',
        "# TYPE ledger_dead_letters_total counter",
        "ledger_dead_letters_total 3",
        "# TYPE ledger_dead_letters_unpublished gauge",
        "ledger_dead_letters_unpublished 1",
    ]
    healthy = metrics.projector_text([PartitionFreshness(0, 4, 4, 0.0)], [], (0, 0))
    assert "ledger_projector_stopped 0" in healthy.splitlines()
    assert "ledger_projector_log_loss{" not in healthy
