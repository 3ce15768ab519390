"""Command endpoints: validate, append to the log, answer 201 only after the broker's ack."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse

from schemas.events import rfc3339
from services.api.commands import Builder, Context
from services.http.app_state import ledger_of
from services.http.appending import append_request
from services.http.body import Fields, check_subject_id, read_json_object
from services.http.problems import field_error, invalid
from services.ledger import idempotency
from services.ledger.append import Appended
from services.ledger.tokens import encode_token
from services.telemetry.request_context import opaque_id_problem

MAX_KEY_LENGTH: Final = 200


def idempotency_key(request: Request) -> str | None:
    """The request's Idempotency-Key, held to the X-Request-Id rule
    (services/telemetry/request_context.py): an e-mail address or a phone number as a key is
    refused (400), never stored."""
    key = request.headers.get("idempotency-key")
    if key is not None and (problem := opaque_id_problem(key, MAX_KEY_LENGTH)):
        raise invalid([field_error("Idempotency-Key", problem)], 400)
    return key


def command_endpoint(route: str, build: Builder) -> Any:
    async def endpoint(request: Request) -> JSONResponse:
        ledger = ledger_of(request)
        subject_id = check_subject_id(request.path_params["subject_id"])
        key = idempotency_key(request)
        body = await read_json_object(request)
        now = datetime.now(UTC)
        events = build(Fields(body), Context(subject_id, now, ledger.catalogue))
        # only a keyed request is ever compared with another
        digest = idempotency.request_digest(route, subject_id, body) if key is not None else b""
        appended = await append_request(
            ledger, events, key=key, digest=digest, subject_id=subject_id
        )
        return created(appended)

    endpoint.__name__ = "command_" + route.replace("/", "_")
    return endpoint


def created(appended: Appended, extra: dict[str, Any] | None = None) -> JSONResponse:
    """The 201 answer; `extra` adds route-specific fields."""
    events = appended.events
    main, (partition, offset) = events[-1], appended.positions[-1]
    body: dict[str, Any] = {
        "event_id": str(main.event_id),
        "type": main.type,
        "subject_id": main.subject_id,
        "recorded_at": rfc3339(main.recorded_at),
        "token": encode_token(partition, offset + 1),
    }
    if len(events) > 1:
        body["events"] = [{"event_id": str(e.event_id), "type": e.type} for e in events]
    body.update(extra or {})
    headers = {"Idempotent-Replayed": "true"} if appended.replayed else {}
    return JSONResponse(body, 201, headers=headers)
