"""GET /readyz: whether this API process can serve, from one snapshot shared by concurrent
callers and at most SNAPSHOT_S old, so a flood of probes cannot hold the pool.

Design: docs/developers/design/projector-health.md
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any, Final

import asyncpg
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from services.api import openapi_responses as answers
from services.api.projector_status import RETRY_AFTER_S, projector_json, stale_answer
from services.bootstrap import Ledger
from services.http.app_state import caller_of, ledger_of
from services.http.openapi_parts import PROBLEM
from services.http.problems import unavailable
from services.reads.shared_read import SharedRead

#: how long one snapshot answers every caller
SNAPSHOT_S: Final = 1.0
READY: Final = "ready"
NOT_READY: Final = "not-ready"


@dataclass(frozen=True, slots=True)
class Readiness:
    ready: bool
    #: why not ready (None when ready)
    reason: str | None = None
    #: the next offset the projection will apply, by partition
    projected: dict[str, int] = field(default_factory=dict)
    #: the projector's health (services/api/projector_status.py), when it could be read
    projector: dict[str, Any] | None = None
    #: how the catalogue file differs from the log's catalogue: reported, never a reason to
    #: be unready (the log is the truth; `consent-ledger purposes apply` records the file)
    catalogue: dict[str, Any] = field(default_factory=dict)


async def read_readiness(ledger: Ledger) -> Readiness:
    """One snapshot: five statements, and the producer's view of the topic (in memory)."""
    try:
        await ledger.pool.fetchval("SELECT 1", timeout=2)
        if not ledger.publisher.producer.client.cluster.partitions_for_topic(ledger.settings.topic):
            return Readiness(False, "event topic not known to the producer yet")
        positions = await ledger.progress.refresh()
        snapshot = await ledger.health.snapshot()
        projector = projector_json(snapshot, await ledger.health.dead_letters())
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
        return Readiness(False, f"database not reachable: {type(exc).__name__}")
    projected = {str(k): v for k, v in positions.items()}
    # with the guard off, only a stop or an unknown writer key makes a verdict not fresh
    if not snapshot.verdict.fresh:
        return Readiness(False, snapshot.verdict.reason, projected, projector)
    return Readiness(True, None, projected, projector, catalogue_drift(ledger))


def catalogue_drift(ledger: Ledger) -> dict[str, Any]:
    """The purpose cache's last comparison of the file with the log (in memory)."""
    found = ledger.purposes.drift
    return {"file_differs": bool(found), "differences": [d.as_json() for d in found]}


def _keep(_: Readiness) -> float:
    return SNAPSHOT_S


def readiness_reader(ledger: Ledger) -> SharedRead[Readiness]:
    """Snapshots kept SNAPSHOT_S by the projection health's clock."""
    return SharedRead(partial(read_readiness, ledger), _keep, ledger.health.clock)


def shared_readiness(request: Request) -> SharedRead[Readiness]:
    """The app's shared snapshot, made on first use (like the OpenAPI document)."""
    state = request.app.state
    if not hasattr(state, "readiness"):
        state.readiness = readiness_reader(ledger_of(request))
    shared: SharedRead[Readiness] = state.readiness
    return shared


def detailed_answer(readiness: Readiness) -> Response:
    """What a caller with a valid key gets: today's full answer."""
    if readiness.ready:
        body = {
            "status": READY,
            "projected": readiness.projected,
            "projector": readiness.projector,
            "catalogue": readiness.catalogue,
        }
        return JSONResponse(body)
    reason = readiness.reason or NOT_READY
    if readiness.projector is None:
        return unavailable(reason).response("/readyz")
    return stale_answer(readiness.projector, reason)


def status_answer(readiness: Readiness) -> Response:
    """What a caller without a key gets: the status, nothing else."""
    if readiness.ready:
        return JSONResponse({"status": READY})
    return JSONResponse({"status": NOT_READY}, 503, headers={"Retry-After": str(RETRY_AFTER_S)})


async def readyz(request: Request) -> Response:
    readiness = await shared_readiness(request).get()
    if caller_of(request) is None:
        return status_answer(readiness)
    return detailed_answer(readiness)


OPERATION: Final[dict[str, Any]] = {
    "parameters": [],
    "responses": {"200": answers.READY, "4XX": PROBLEM, "503": answers.NOT_READY},
}
