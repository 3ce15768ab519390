"""The projector's health in HTTP answers: the staleness guard of the decision endpoints and
the `projector` member of GET /readyz; decisions fail closed on state that may miss a withdrawal.

Design: docs/developers/design/projector-health.md
"""

from __future__ import annotations

import math
from typing import Any, Final

from starlette.responses import JSONResponse

from services.bootstrap import Ledger
from services.http.problems import PROBLEM_JSON, ProblemError
from services.reads.projection_health import HealthSnapshot

STALE_KIND: Final = "projection-stale"
STALE_TITLE: Final = "Projection not current"
RETRY_AFTER_S: Final = 5


async def require_fresh(ledger: Ledger) -> None:
    """Raise a 503 problem unless decisions may be answered from the projection now. With the
    time limit off (LEDGER_MAX_STALENESS_MS=0) a loss-detection stop still refuses."""
    verdict = await ledger.health.verdict()
    if not verdict.fresh:
        raise ProblemError(
            503,
            STALE_TITLE,
            f"no decision is answered from a projection that may be out of date:"
            f" {verdict.reason}; do not send, retry later",
            headers={"Retry-After": str(RETRY_AFTER_S)},
            kind=STALE_KIND,
        )


def _seconds(value: float | None) -> float | None:
    return None if value is None or math.isinf(value) else round(value, 3)


def projector_json(snapshot: HealthSnapshot, dead_letters: tuple[int, int]) -> dict[str, Any]:
    verdict = snapshot.verdict
    return {
        "fresh": verdict.fresh,
        "reason": verdict.reason,
        "staleness_s": _seconds(verdict.staleness_s),
        "partitions": {
            str(p.partition): {
                "position": p.position,
                "highwater": p.highwater,
                "lag": p.lag,
                "behind_s": _seconds(p.behind_s),
                "writer_key_ids": None if p.writer_key_ids is None else list(p.writer_key_ids),
            }
            for p in snapshot.partitions
        },
        "stopped": [loss.describe() for loss in snapshot.stops],
        "dead_letters": dead_letters[0],
        "dead_letters_unpublished": dead_letters[1],
    }


def stale_answer(projector: dict[str, Any], reason: str) -> JSONResponse:
    """/readyz's 503 for a caller with a key, when the projector makes the ledger unready:
    stopped by a loss, unable to check this API's writer key, or (with the guard on) too far
    behind."""
    problem = {
        "type": f"urn:consent-ledger:problem:{STALE_KIND}",
        "title": STALE_TITLE,
        "status": 503,
        "detail": reason,
        "instance": "/readyz",
        "projector": projector,
    }
    headers = {"Retry-After": str(RETRY_AFTER_S)}
    return JSONResponse(problem, 503, headers=headers, media_type=PROBLEM_JSON)
