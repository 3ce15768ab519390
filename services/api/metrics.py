"""GET /metrics: the projector's histograms and the rights-request gauges (counted at
scrape time against today's UTC date), then this API process's own metrics
(services/api/api_metrics.py), in the Prometheus text format."""

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
    return Response(text, headers={"Content-Type": CONTENT_TYPE, "Cache-Control": "no-store"})
