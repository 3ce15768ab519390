"""Rights requests over HTTP: record each step, list open and overdue ones (Art. 12(3)).

POST /v1/requests records a request received (keyed by its subject, like every event);
POST /v1/requests/{request_id}/<step> records a step of a projected request: pass the
receipt's `token` as `?min_token=` to step right after receiving. GET /v1/requests pages
requests by deadline; GET /v1/requests/{request_id} shows one.
The same concept as projections/requests.py, on the HTTP side.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any, Final
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse

from projections import requests as rights
from projections.periods import due_on
from projections.requests import RightsRequest
from schemas.events import Event
from services.api import openapi_responses as answers
from services.api.body_schemas import builder_body
from services.api.commands import Context
from services.api.request_commands import STEPS, conflict, receive, request_json
from services.api.write import created, idempotency_key
from services.bootstrap import Ledger
from services.http.access_logging import record_read, record_reads
from services.http.app_state import ledger_of
from services.http.appending import append_request
from services.http.body import Fields, query_fields, read_json_object
from services.http.openapi_parts import MIN_TOKEN, path_param, problem_answer, query_param
from services.http.problems import ProblemError, field_error, invalid, unavailable
from services.http.route_spec import OperationOf
from services.http.whole_numbers import whole_number_field
from services.ledger import idempotency
from services.ledger.tokens import TokenError, decode_token
from services.rules.catalogue import Catalogue

PATH: Final = "/v1/requests"
ITEM_PATH: Final = "/v1/requests/{request_id}"
STATUSES: Final = ("open", "overdue", "closed")
#: the steps, each POST /v1/requests/{request_id}/<step>
STEP_NAMES: Final = tuple(STEPS)
DEFAULT_LIMIT: Final = 100
MAX_LIMIT: Final = 1000


def _today() -> date:
    return datetime.now(UTC).date()


async def wait_for_token(ledger: Ledger, f: Fields) -> None:
    """Honour `min_token` (query): wait, bounded, until the projection has applied it."""
    token = f.text("min_token", max_len=200)
    if token is None:
        return
    try:
        partition, position = decode_token(token)
    except TokenError as exc:
        raise invalid([field_error("min_token", str(exc))], 400) from None
    if not await ledger.progress.wait_for(partition, position, ledger.settings.read_wait_ms / 1000):
        raise unavailable("the projection has not yet applied min_token's position", 1)


async def _request(ledger: Ledger, request: Request, f: Fields) -> RightsRequest:
    """The projected request of the path; 404 when there is none (yet)."""
    try:
        request_id = uuid.UUID(request.path_params["request_id"])
    except ValueError:
        raise invalid([field_error("request_id", "must be a UUID")]) from None
    await wait_for_token(ledger, f)
    f.finish()
    found = await rights.get(ledger.pool, request_id)
    if found is None:
        raise ProblemError(
            404,
            "Unknown request",
            "no rights request has this id (a request just received: pass its token as min_token)",
            kind="unknown-request",
        )
    return found


async def receive_request(request: Request) -> JSONResponse:
    """POST /v1/requests: a request received, with its subject in the body."""
    ledger = ledger_of(request)
    key = idempotency_key(request)
    body = await read_json_object(request)
    f = Fields(body)
    subject_id = f.subject_id() or ""
    events = receive(f, Context(subject_id, datetime.now(UTC), ledger.catalogue))
    digest = idempotency.request_digest("requests", subject_id, body)
    appended = await append_request(ledger, events, key=key, digest=digest, subject_id=subject_id)
    received = appended.events[-1]
    extra = {
        "request_id": str(received.data["request_id"]),
        "due_on": due_on(received.occurred_at).isoformat(),
    }
    return created(appended, extra)


def step_endpoint(step: str) -> Any:
    """POST /v1/requests/{request_id}/<step>: verify, extend, complete or refuse."""
    build = STEPS[step]

    async def endpoint(request: Request) -> JSONResponse:
        ledger = ledger_of(request)
        key = idempotency_key(request)
        body = await read_json_object(request)
        found = await _request(ledger, request, query_fields(request))
        ctx = Context(found.subject_id, datetime.now(UTC), ledger.catalogue)
        events = build(Fields(body), ctx, found)
        # a retry under its key gets the first answer, whatever the request became since
        why = conflict(found, events[-1])
        if why is not None and (key is None or not await _claimed(ledger, key)):
            raise why
        digest = idempotency.request_digest(f"requests/{step}", str(found.request_id), body)
        appended = await append_request(
            ledger, events, key=key, digest=digest, subject_id=found.subject_id
        )
        return created(appended, {"request_id": str(found.request_id)})

    endpoint.__name__ = f"request_{step}"
    return endpoint


async def _claimed(ledger: Ledger, key: str) -> bool:
    stored = idempotency.key_hash(ledger.secrets.blind_index_key, key)
    return await idempotency.is_claimed(ledger.pool, stored)


async def show_request(request: Request) -> JSONResponse:
    """GET /v1/requests/{request_id}."""
    ledger = ledger_of(request)
    found = await _request(ledger, request, query_fields(request))
    await record_read(request, found.subject_id)  # a request names its subject
    return JSONResponse(request_json(found, _today()))


def _cursor(f: Fields) -> tuple[date, uuid.UUID]:
    raw = f.raw("after")
    if raw is None:
        return date.min, uuid.UUID(int=0)
    try:
        day, _, rid = str(raw).partition("_")
        return date.fromisoformat(day), uuid.UUID(rid)
    except ValueError:
        f.error("after", "is not a cursor of this list; use the `next` link of a page")
        return date.min, uuid.UUID(int=0)


async def list_requests(request: Request) -> JSONResponse:
    """GET /v1/requests?status=open|overdue|closed: by deadline, paged."""
    ledger = ledger_of(request)
    f = query_fields(request)
    status = f.choice("status", STATUSES, default="open") or "open"
    limit = whole_number_field(f, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    after = _cursor(f)
    f.finish()
    today = _today()
    found = await rights.page(ledger.pool, status, today, after, limit + 1)
    following = None
    if len(found) > limit:
        found = found[:limit]
        last = found[-1]
        cursor = f"{last.due_on.isoformat()}_{last.request_id}"
        following = f"{PATH}?{urlencode({'status': status, 'limit': limit, 'after': cursor})}"
    await record_reads(request, sorted({r.subject_id for r in found}))
    return JSONResponse(
        {
            "status": status,
            "today": today.isoformat(),
            "requests": [request_json(r, today) for r in found],
            "next": following,
        }
    )


_ERRORS: Final = {"4XX": problem_answer("problem details (RFC 9457)"), "503": problem_answer("")}
_ITEM: Final = [path_param("request_id"), MIN_TOKEN]
LIST_OPERATION: Final[dict[str, Any]] = {
    "summary": "Rights requests by deadline: open, overdue or closed, paged",
    "parameters": [query_param("status"), query_param("limit"), query_param("after")],
    "responses": {"200": answers.REQUESTS, **_ERRORS},
}
SHOW_OPERATION: Final[dict[str, Any]] = {
    "parameters": _ITEM,
    "responses": {"200": answers.REQUEST, **_ERRORS},
}


def _received(f: Fields, ctx: Context) -> list[Event]:
    f.subject_id()
    return receive(f, ctx)


def receive_operation(catalogue: Catalogue) -> dict[str, Any]:
    return {
        "summary": "Record a rights request received (Art. 12(3): one month to answer)",
        "requestBody": builder_body(_received, catalogue),
        "responses": {"201": answers.CREATED, **_ERRORS},
    }


def step_operation(step: str) -> OperationOf:
    """The operation of POST /v1/requests/{request_id}/<step>, its body read from the step's
    builder run on a stand-in request."""
    build = STEPS[step]

    def operation(catalogue: Catalogue) -> dict[str, Any]:
        probe = RightsRequest(uuid.UUID(int=0), "probe", "access", datetime.now(UTC), ())

        def on_probe(f: Fields, ctx: Context) -> list[Event]:
            return build(f, ctx, probe)

        return {
            "summary": (build.__doc__ or step).strip().splitlines()[0],
            "parameters": _ITEM,
            "requestBody": builder_body(on_probe, catalogue),
            "responses": {"201": answers.CREATED, **_ERRORS},
        }

    return operation
