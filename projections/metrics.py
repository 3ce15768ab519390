"""Metrics the projector observes, kept as histograms in PostgreSQL (in the transaction that
applies each batch, so each counts once) and shown on GET /metrics.
The same concept as services/api/metrics.py, on the projector's side.

Design: docs/developers/design/projector.md
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Final

import asyncpg

from projections.freshness import PartitionFreshness
from projections.log_loss import LogLoss
from schemas import events as ev
from schemas.events import Event

UNSUBSCRIBE_SECONDS: Final = "ledger_unsubscribe_to_projection_seconds"
BATCH_RECORDS: Final = "ledger_projector_batch_records"
BATCH_SECONDS: Final = "ledger_projector_batch_seconds"
HELP: Final = {
    UNSUBSCRIBE_SECONDS: (
        "Time from an unsubscribe-link withdrawal or objection being recorded by the API to its"
        " projection, after which decisions deny."
    ),
    BATCH_RECORDS: "Records of the event topic in each batch the projector applied.",
    BATCH_SECONDS: (
        "Time the projector took to apply a batch, from its first statement to just before the"
        " commit."
    ),
}
BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, math.inf)
#: histograms whose bounds are not BUCKETS' seconds
BOUNDS: Final[dict[str, tuple[float, ...]]] = {
    BATCH_RECORDS: (1, 10, 50, 100, 250, 500, 1000, 2000, 5000, 10000, 100000, math.inf),
}
_DENYING: Final = frozenset({ev.CONSENT_WITHDRAWN, ev.DIRECT_MARKETING_OBJECTED})

#: bucket upper bound -> (observations in the bucket, their sum)
Buckets = dict[float, tuple[int, float]]


def unsubscribe_latencies(events: Iterable[Event], applied_at: datetime) -> list[float]:
    """Seconds from recording to projection of each denying event made by unsubscribe link."""
    return [
        max(0.0, (applied_at - e.recorded_at).total_seconds())
        for e in events
        if e.type in _DENYING and e.source.method == "unsubscribe_link"
    ]


def bounds_of(name: str) -> tuple[float, ...]:
    return BOUNDS.get(name, BUCKETS)


def bucket(values: Iterable[float], bounds: tuple[float, ...] = BUCKETS) -> Buckets:
    out: Buckets = {}
    for value in values:
        bound = next(b for b in bounds if value <= b)
        count, total = out.get(bound, (0, 0.0))
        out[bound] = (count + 1, total + value)
    return out


UPSERT = """
INSERT INTO metric_histograms AS h (name, upper_bound, observations, total)
VALUES ($1, $2, $3, $4)
ON CONFLICT (name, upper_bound) DO UPDATE SET
    observations = h.observations + EXCLUDED.observations, total = h.total + EXCLUDED.total
"""


async def observe(conn: asyncpg.Connection, name: str, values: Iterable[float]) -> None:
    """Add observations; call inside the batch's transaction. Bounds in order: no deadlocks."""
    await observe_all(conn, {name: values})


async def observe_all(conn: asyncpg.Connection, observed: Mapping[str, Iterable[float]]) -> None:
    """Add observations of several histograms in one round trip, rows in (name, bound) order so
    concurrent batches lock them in the same order."""
    rows = [
        (name, b, n, s)
        for name in sorted(observed)
        for b, (n, s) in sorted(bucket(observed[name], bounds_of(name)).items())
    ]
    if rows:
        await conn.executemany(UPSERT, rows)


async def load(pool: asyncpg.Pool | asyncpg.Connection) -> dict[str, Buckets]:
    rows = await pool.fetch("SELECT name, upper_bound, observations, total FROM metric_histograms")
    out: dict[str, Buckets] = {name: {} for name in HELP}
    for r in rows:
        out.setdefault(r["name"], {})[r["upper_bound"]] = (r["observations"], r["total"])
    return out


def _le(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else repr(bound)


def prometheus_text(histograms: Mapping[str, Buckets]) -> str:
    """The Prometheus text exposition format (0.0.4): cumulative buckets, sum and count."""
    lines: list[str] = []
    for name in sorted(histograms):
        buckets = histograms[name]
        if name in HELP:
            lines.append(f"# HELP {name} {HELP[name]}")
        lines.append(f"# TYPE {name} histogram")
        running, total = 0, 0.0
        for bound in sorted({*bounds_of(name), *buckets}):
            count, subtotal = buckets.get(bound, (0, 0.0))
            running += count
            total += subtotal
            lines.append(f'{name}_bucket{{le="{_le(bound)}"}} {running}')
        lines.append(f"{name}_sum {total!r}")
        lines.append(f"{name}_count {running}")
    return "\n".join(lines) + "\n"


def _gauge(name: str, kind: str, help_text: str, samples: Iterable[tuple[str, float]]) -> list[str]:
    """One metric family: its HELP and TYPE lines and a line per (labels, value) sample."""
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    for labels, value in samples:
        lines.append(f"{name}{labels} {'+Inf' if math.isinf(value) else repr(value)}")
    return lines


def projector_text(
    partitions: Sequence[PartitionFreshness],
    stops: Sequence[LogLoss],
    dead_letters: tuple[int, int],
) -> str:
    """The projector's health in the Prometheus text format: per partition as last reported."""
    total, unpublished = dead_letters
    lines = [
        *_gauge(
            "ledger_projector_lag_records",
            "gauge",
            "Records of the partition's log the projection has not applied yet: the high-water"
            " mark of the projector's latest fetch minus its position.",
            ((f'{{partition="{p.partition}"}}', p.lag) for p in partitions if p.lag is not None),
        ),
        *_gauge(
            "ledger_projector_behind_seconds",
            "gauge",
            "Seconds since the projection last held every record the partition's log held"
            " (+Inf: not yet); the staleness guard compares the largest with"
            " LEDGER_MAX_STALENESS_MS.",
            (
                (f'{{partition="{p.partition}"}}', math.inf if p.behind_s is None else p.behind_s)
                for p in partitions
            ),
        ),
        *_gauge(
            "ledger_projector_stopped",
            "gauge",
            "1 while loss detection stops the projector (see /readyz for the reason), else 0.",
            [("", 1 if stops else 0)],
        ),
        *_gauge(
            "ledger_projector_log_loss",
            "gauge",
            "1 per partition whose log cannot serve the projection's stored offset.",
            (
                (f'{{partition="{x.partition}",problem="{x.problem}"}}', 1)
                for x in sorted(stops, key=lambda x: x.partition)
            ),
        ),
        *_gauge(
            "ledger_dead_letters_total",
            "counter",
            "Undecodable records of the event topic queued for the dead-letter topic, ever"
            " (those purged after LEDGER_DEAD_LETTER_RETENTION_DAYS included).",
            [("", total)],
        ),
        *_gauge(
            "ledger_dead_letters_unpublished",
            "gauge",
            "Dead letters not yet acknowledged by the dead-letter topic.",
            [("", unpublished)],
        ),
    ]
    return "\n".join(lines) + "\n"
