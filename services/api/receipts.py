"""GET /v1/receipts/{event_id}: a signed consent receipt for a grant or withdrawal, and
GET /.well-known/jwks.json: the public keys that verify it.

The receipt is built from the journal's copy of the event with the purpose version in force
when the event was recorded (services/proof/receipts.py) and signed
as a compact JWS with the current receipt key (services/proof/receipt_signing.py). An unknown event
id is a 404; an event that is no grant or withdrawal is a 422 naming `event_id`.
The same concept as services/proof/receipts.py, on the HTTP side.
"""

from __future__ import annotations

import uuid
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse

from projections import journal, notices
from schemas.events import Event
from services.api import openapi_responses as answers
from services.bootstrap import Ledger
from services.http.access_logging import record_read
from services.http.app_state import ledger_of, purpose_history_of
from services.http.body import Fields
from services.http.openapi_parts import MIN_TOKEN, path_param, problem_answer, query_param
from services.http.problems import ProblemError, field_error, invalid
from services.http.subjects import wait_for_token
from services.identity.context_sealing import open_context
from services.proof import receipt_signing, receipts

JWKS_PATH: Final = "/.well-known/jwks.json"


def issuer(ledger: Ledger) -> receipts.Issuer:
    s = ledger.settings
    return receipts.Issuer(s.controller_name, s.controller_contact, s.jurisdiction)


async def _event(ledger: Ledger, event_id: uuid.UUID) -> Event:
    stored = await journal.stored_record(ledger.pool, event_id)
    if stored is None:
        raise ProblemError(
            404,
            "Unknown event",
            "the ledger has no event with this id (pass min_token to wait for a fresh one)",
            errors=[field_error("event_id", "no such event")],
            kind="unknown-event",
        )
    event_type, value = stored
    if event_type not in receipts.RECEIPT_TYPES:
        raise invalid(
            [
                field_error(
                    "event_id",
                    f"is a {event_type} event; receipts exist for consent events only",
                    list(receipts.RECEIPT_TYPES),
                )
            ]
        )
    return ledger.codec.decode(value)


async def receipt(request: Request) -> JSONResponse:
    ledger = ledger_of(request)
    f = Fields(dict(request.query_params))
    fmt = f.choice("format", receipts.FORMATS, default=receipts.FORMATS[0])
    await wait_for_token(ledger, f)
    raw_id = request.path_params["event_id"]
    try:
        event_id = uuid.UUID(raw_id)
    except ValueError:
        event_id = uuid.UUID(int=0)
        f.error("event_id", "must be an event id (a UUID)")
    f.finish()
    assert fmt is not None
    event = await _event(ledger, event_id)
    await record_read(request, event.subject_id)
    notice = await notices.get(ledger.pool, event.notice_version) if event.notice_version else None
    ring = ledger.secrets.receipts
    record = event.data.get("context")
    context = None
    if record is not None:
        data_key = await ledger.data_keys.existing(event.subject_id)
        context = open_context(record, event.subject_id, data_key)
    body = receipts.build(
        event,
        fmt,
        # the purpose version in force when the ledger recorded the choice
        catalogue=purpose_history_of(ledger).at(event.recorded_at),
        notice=notice,
        issuer=issuer(ledger),
        public_key=receipt_signing.b64url(receipt_signing.public_key(ring.current)),
        context=context,
    )
    jws = receipt_signing.sign(body, ring)
    return JSONResponse(receipts.answer(body, fmt, jws, ring.current_id))


async def jwks(request: Request) -> JSONResponse:
    ledger = ledger_of(request)
    return JSONResponse(
        receipt_signing.jwks(ledger.secrets.receipts),
        media_type=receipt_signing.JWKS_MEDIA_TYPE,
        headers={"Cache-Control": "public, max-age=300"},
    )


RECEIPT_OPERATION: Final[dict[str, Any]] = {
    "summary": "A signed consent receipt (ISO/IEC TS 27560 or Kantara CR 1.1) for a"
    " grant or withdrawal",
    "parameters": [
        path_param("event_id", {"type": "string", "format": "uuid"}),
        query_param("format", schema={"type": "string", "enum": list(receipts.FORMATS)}),
        MIN_TOKEN,
    ],
    "responses": {
        "200": answers.RECEIPT,
        "404": problem_answer("problem"),
        "4XX": problem_answer("problem"),
        "503": problem_answer("problem"),
    },
}
JWKS_OPERATION: Final[dict[str, Any]] = {
    "summary": "The public keys (JWK set, Ed25519) that verify receipts",
    "responses": {"200": answers.JWKS},
}
