"""GET /metrics: the projector's histograms, the rights-request gauges (counted at scrape time
against today's UTC date) and the projector's health (lag, staleness, loss detection, dead
letters), the webhook deliveries' outcomes and queues, then this API process's own metrics
(services/telemetry/api_metrics.py), in the Prometheus text format.
The same concept as projections/metrics.py, on the HTTP side."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response

from projections import metrics, requests, webhook_deliveries
from services.api.openapi_responses import METRICS
from services.bootstrap import Ledger
from services.http.app_state import ledger_of
from services.telemetry import api_metrics

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PATH: Final = "/metrics"
OPERATION: Final[dict[str, Any]] = {"summary": "Prometheus metrics", "responses": {"200": METRICS}}


async def metrics_endpoint(request: Request) -> Response:
    ledger = ledger_of(request)
    text = metrics.prometheus_text(await metrics.load(ledger.pool))
    text += requests.prometheus_gauges(
        *await requests.counts(ledger.pool, datetime.now(UTC).date())
    )
    text += api_metrics.prometheus_text()
    text += await projector_metrics(ledger)
    text += webhook_deliveries.prometheus_text(
        await webhook_deliveries.outcome_counts(ledger.pool),
        await webhook_deliveries.queue_gauges(ledger.pool),
    )
    return Response(text, headers={"Content-Type": CONTENT_TYPE, "Cache-Control": "no-store"})


async def projector_metrics(ledger: Ledger) -> str:
    """Lag and staleness per partition, loss detection and dead letters, read at scrape time."""
    snapshot = await ledger.health.snapshot()
    return metrics.projector_text(
        snapshot.partitions, snapshot.stops, await ledger.health.dead_letters()
    )
