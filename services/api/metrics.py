"""GET /metrics: the projector's histograms, the rights-request gauges (counted at scrape time
against today's UTC date) and the projector's health (lag, staleness, loss detection, dead
letters), then this API process's own metrics (services/api/api_metrics.py), in the Prometheus
text format."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response

from projections import metrics, requests
from services.api import api_metrics
from services.bootstrap import Ledger

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


async def metrics_endpoint(request: Request) -> Response:
    ledger: Ledger = request.app.state.ledger
    text = metrics.prometheus_text(await metrics.load(ledger.pool))
    text += requests.prometheus_gauges(
        *await requests.counts(ledger.pool, datetime.now(UTC).date())
    )
    text += api_metrics.prometheus_text()
    text += await projector_metrics(ledger)
    return Response(text, headers={"Content-Type": CONTENT_TYPE, "Cache-Control": "no-store"})


async def projector_metrics(ledger: Ledger) -> str:
    """Lag and staleness per partition, loss detection and dead letters, read at scrape time."""
    snapshot = await ledger.health.snapshot()
    return metrics.projector_text(
        snapshot.partitions, snapshot.stops, await ledger.health.dead_letters()
    )
