"""POST /v1/subjects/{subject_id}/erasure: erase a subject by crypto-shredding (Art. 17), in
the order that makes a failure safe to retry: the identifiers webhooks must carry captured first
(services/webhooks/erasure_capture.py), then the event acknowledged, then the key destroyed.
One concept, three sides: projections/erasure.py, services/rules/erasure.py.

Design: docs/developers/design/erasure.md
"""

from __future__ import annotations

import contextlib
import uuid
from datetime import UTC, datetime
from typing import Any, Final

import asyncpg
from starlette.requests import Request
from starlette.responses import JSONResponse

from projections import requests as rights
from projections import webhook_subscriptions
from schemas import events as ev
from schemas.codec import CodecError
from schemas.events import Event
from services.api.body_schemas import IDEMPOTENCY, SUBJECT, builder_body
from services.api.commands import Common, Context
from services.api.openapi_responses import CREATED
from services.api.requests import wait_for_token
from services.api.write import created, idempotency_key
from services.bootstrap import Ledger
from services.http.app_state import ledger_of
from services.http.appending import append_request
from services.http.body import Fields, check_subject_id, query_fields, read_json_object
from services.http.openapi_parts import MIN_TOKEN, PROBLEM
from services.http.problems import ProblemError, field_error, unavailable
from services.ledger import idempotency
from services.ledger.errors import IdempotencyKeyReused, WriterKeyUnknown
from services.ledger.errors import SubjectErased as SubjectErasedError
from services.rules.catalogue import Catalogue
from services.webhooks import erasure_capture

ROUTE: Final = "erasure"
PATH: Final = "/v1/subjects/{subject_id}/erasure"
_DATABASE_ERRORS: Final = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError)
#: the append's refusals that come before anything is sent (services/ledger/append.py)
_NOTHING_APPENDED: Final = (IdempotencyKeyReused, WriterKeyUnknown, SubjectErasedError, CodecError)


def request_id_field(f: Fields, name: str = "request_id") -> uuid.UUID | None:
    """An optional UUID field (a rights request's id)."""
    raw = f.raw(name)
    if raw is None:
        return None
    if isinstance(raw, str):
        with contextlib.suppress(ValueError):
            return uuid.UUID(raw)
    f.error(name, "must be the request_id of a rights request (a UUID)")
    return None


def build(f: Fields, ctx: Context) -> tuple[list[Event], uuid.UUID | None]:
    """The SubjectErased for the body (pure), and the rights request it names, if any."""
    common = Common(f, ctx)
    ground = f.choice("ground", ev.ERASURE_GROUNDS, required=True)
    request_id = request_id_field(f)
    f.finish()
    event = common.event(ev.SUBJECT_ERASED, {"ground": ground, "request_id": request_id})
    return [event], request_id


async def _check_request(ledger: Ledger, request_id: uuid.UUID, subject_id: str) -> None:
    found = await rights.get(ledger.pool, request_id)
    if found is None or found.subject_id != subject_id:
        why = (
            "is not a rights request of this subject"
            if found
            else "names no rights request (one received a moment ago: pass its token as min_token)"
        )
        raise ProblemError(
            422,
            "Invalid request",
            f"request_id: {why}",
            errors=[field_error("request_id", why)],
            kind="invalid-request",
        )


async def erase(request: Request) -> JSONResponse:
    ledger = ledger_of(request)
    subject_id = check_subject_id(request.path_params["subject_id"])
    key = idempotency_key(request)
    body = await read_json_object(request)
    query = query_fields(request)
    await wait_for_token(ledger, query)
    query.finish()
    events, request_id = build(
        Fields(body), Context(subject_id, datetime.now(UTC), ledger.catalogue)
    )
    if request_id is not None:
        await _check_request(ledger, request_id, subject_id)
    digest = idempotency.request_digest(ROUTE, subject_id, body)
    mine = events[0].event_id
    captured = await _capture_for_webhooks(ledger, events[0])
    try:
        appended = await append_request(
            ledger, events, key=key, digest=digest, subject_id=subject_id
        )
    except _NOTHING_APPENDED:
        # refused before anything was sent: no event will ever name this capture
        if captured:
            await _forget_quietly(ledger, mine)
        raise
    # BrokerUnavailable and the like propagate with the capture kept: the event may be in the
    # log, or land when the request is retried with its key (the time rule cleans up if not)
    replayed = appended.events[0].event_id != mine
    if captured and replayed:
        await _recapture_for_replay(ledger, appended.events[0], key)
    try:
        await ledger.data_keys.shred(subject_id)
    except _DATABASE_ERRORS:
        retry = "retry with the same Idempotency-Key" if key else "retry"
        raise unavailable(
            "the erasure is in the log but the data key is not destroyed yet (the projector"
            f" destroys it when it applies the erasure); {retry}",
            2,
        ) from None
    if captured and replayed:
        # the first request's event stands, with its capture; this request's never landed
        await _forget_quietly(ledger, mine)
    return created(appended, {"data_key": "shredded"})


async def _forget_quietly(ledger: Ledger, event_id: uuid.UUID) -> None:
    """Forget a capture no event will name; a database error leaves it to the time rule
    (erasure_capture.forget_orphans) rather than fail an erasure that is done."""
    with contextlib.suppress(*_DATABASE_ERRORS):
        await erasure_capture.forget(ledger.pool, event_id)


async def _recapture_for_replay(ledger: Ledger, first: Event, key: str | None) -> None:
    """A replay of a request whose answer was lost (503): its event landed only now, or long
    ago. Capture again under the first event's id while the key still opens the identifiers,
    in case the time rule deleted the first capture meanwhile (a no-op when it stands)."""
    try:
        await _capture_for_webhooks(ledger, first)
    except ProblemError:
        retry = "retry with the same Idempotency-Key" if key else "retry"
        raise unavailable(
            "the erasure is in the log but its identifiers could not be kept for its webhooks"
            f" and the data key is not destroyed yet; {retry}",
            2,
        ) from None


async def _capture_for_webhooks(ledger: Ledger, event: Event) -> bool:
    """Before the event is appended: where a subscription wants SubjectErased with identifiers,
    seal the subject's e-mail addresses and phone numbers for its deliveries (Art. 19), while
    the data key still opens them. Failing here appends nothing, so a retry is safe."""
    try:
        if not await webhook_subscriptions.identifiers_wanted(ledger.pool, ev.SUBJECT_ERASED):
            return False
        return await erasure_capture.capture(
            ledger.pool,
            ledger.data_keys,
            ledger.secrets.master,
            event.event_id,
            event.subject_id,
        )
    except _DATABASE_ERRORS:
        raise unavailable(
            "the erasure's identifiers could not be kept for its webhooks; nothing is recorded:"
            " retry",
            2,
        ) from None


def _erased(f: Fields, ctx: Context) -> list[Event]:
    return build(f, ctx)[0]


def operation(catalogue: Catalogue) -> dict[str, Any]:
    return {
        "summary": "Erase the subject: SubjectErased, then its data key is destroyed",
        "parameters": [SUBJECT, IDEMPOTENCY, MIN_TOKEN],
        "requestBody": builder_body(_erased, catalogue),
        "responses": {"201": CREATED, "4XX": PROBLEM, "503": PROBLEM},
    }
