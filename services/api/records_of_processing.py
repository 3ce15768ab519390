"""GET /v1/records-of-processing: the GDPR Art. 30(1) record of processing activities from the
purpose catalogue in force at `at` (default now), as JSON or CSV (services/proof/
processing_record.py builds it).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from services.api import as_of
from services.api import openapi_responses as answers
from services.bootstrap import Ledger
from services.http.app_state import ledger_of
from services.http.body import Fields
from services.http.openapi_parts import PROBLEM, TIME, query_param
from services.proof import processing_record

PATH: Final = "/v1/records-of-processing"


def controller(ledger: Ledger) -> processing_record.Controller:
    s = ledger.settings
    return processing_record.Controller(
        s.controller_name,
        s.controller_contact,
        s.jurisdiction,
        s.dpo_contact,
        s.data_subjects,
        s.joint_controllers,
        s.eu_representative,
    )


async def records_of_processing(request: Request) -> Response:
    ledger = ledger_of(request)
    f = Fields(dict(request.query_params))
    fmt = f.choice("format", processing_record.FORMATS, default="json") or "json"
    at = as_of.at_param(f)
    f.finish()
    instant = at if at is not None else datetime.now(UTC)
    document = processing_record.record(
        as_of.catalogue_at(ledger, instant), controller(ledger), instant
    )
    if fmt == "json":
        return JSONResponse(document)
    day = instant.date().isoformat()
    return Response(
        processing_record.as_csv(document),
        media_type=processing_record.MEDIA_TYPES["csv"],
        headers={"Content-Disposition": f'attachment; filename="records-of-processing-{day}.csv"'},
    )


OPERATION: Final[dict[str, Any]] = {
    "summary": "The record of processing activities (GDPR Art. 30(1)) from the purpose"
    " catalogue in force at `at`",
    "parameters": [
        query_param("format", schema={"type": "string", "enum": list(processing_record.FORMATS)}),
        query_param("at", schema=TIME),
    ],
    "responses": {"200": answers.RECORDS_OF_PROCESSING, "4XX": PROBLEM, "503": PROBLEM},
}
