"""Metrics the projector observes, kept as histograms in PostgreSQL and shown on GET /metrics.

The one metric so far: how long an unsubscribe took to reach the state decisions read. A
withdrawal or objection made through an unsubscribe link is recorded by the API
(`recorded_at`); once its batch commits, every decision denies. The projector observes
applied_at - recorded_at in the transaction that applies the batch, so the count goes up exactly
once per event. The two instants come from the API's and the projector's clocks; rebuilding the
projections from the log observes the rebuild's delay.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Final

import asyncpg

from schemas import events as ev
from schemas.events import Event

UNSUBSCRIBE_SECONDS: Final = "ledger_unsubscribe_to_projection_seconds"
HELP: Final = {
    UNSUBSCRIBE_SECONDS: (
        "Time from an unsubscribe-link withdrawal or objection being recorded by the API to its"
        " projection, after which decisions deny."
    ),
}
BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, math.inf)
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


def bucket(values: Iterable[float]) -> Buckets:
    out: Buckets = {}
    for value in values:
        bound = next(b for b in BUCKETS if value <= b)
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
    buckets = bucket(values)
    if buckets:
        await conn.executemany(UPSERT, [(name, b, n, s) for b, (n, s) in sorted(buckets.items())])


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
        for bound in sorted({*BUCKETS, *buckets}):
            count, subtotal = buckets.get(bound, (0, 0.0))
            running += count
            total += subtotal
            lines.append(f'{name}_bucket{{le="{_le(bound)}"}} {running}')
        lines.append(f"{name}_sum {total!r}")
        lines.append(f"{name}_count {running}")
    return "\n".join(lines) + "\n"
