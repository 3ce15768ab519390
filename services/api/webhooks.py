"""The webhook subscriptions (admin): POST, GET /v1/webhooks, GET, PATCH, DELETE
/v1/webhooks/{id} and POST /v1/webhooks/{id}/rotate-secret; a secret is shown only when made.
The fields: services/rules/webhook_fields.py; the tables: projections/webhook_subscriptions.py.

Design: docs/developers/design/webhooks.md
"""

from __future__ import annotations

import uuid
from typing import Any, Final, cast

import asyncpg
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from projections import webhook_subscriptions as subscriptions
from schemas.events import rfc3339
from services.bootstrap import Ledger
from services.http.app_state import caller_of, ledger_of
from services.http.body import read_json_object
from services.http.openapi_parts import (
    BOOLEAN,
    NULLABLE_STRING,
    NULLABLE_TIME,
    PROBLEM,
    STRING,
    TIME,
    UUID,
    array,
    json_answer,
    obj,
    path_param,
    problem_answer,
    request_body,
)
from services.http.problems import ProblemError, field_error, invalid
from services.rules.webhook_fields import (
    RETIRE_PREVIOUS,
    WEBHOOK_EVENT_TYPES,
    FieldProblem,
    change_problems,
    check_fields,
    check_rotation,
)
from services.webhooks import subscriptions as subscription_changes

PATH: Final = "/v1/webhooks"
ITEM_PATH: Final = "/v1/webhooks/{webhook_id}"
ROTATE_PATH: Final = "/v1/webhooks/{webhook_id}/rotate-secret"


def _checked(ledger: Ledger, body: dict[str, Any], *, creating: bool) -> dict[str, Any]:
    values, problems = check_fields(
        body,
        creating=creating,
        allow_loopback=ledger.settings.webhook_allow_loopback,
        allow_private=ledger.settings.webhook_allow_private,
    )
    if problems:
        raise invalid([_error(p) for p in problems])
    return values


def _error(p: FieldProblem) -> dict[str, Any]:
    return field_error(p.field, p.detail, list(p.accepted) if p.accepted else None)


def _not_found(raw: str) -> ProblemError:
    return ProblemError(404, "Not found", f"no webhook {raw[:64]!r}", kind="not-found")


def _webhook_id(request: Request) -> uuid.UUID:
    raw = request.path_params["webhook_id"]
    if len(raw) > 40:
        raise _not_found(raw)
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise _not_found(raw) from None


async def _found(ledger: Ledger, webhook_id: uuid.UUID) -> subscriptions.SubscriptionRow:
    row = await subscriptions.get_subscription(ledger.pool, webhook_id)
    if row is None:
        raise _not_found(str(webhook_id))
    return row


async def create(request: Request) -> JSONResponse:
    """Subscribe a receiver: 201 with the subscription and its secret, shown this once."""
    ledger = ledger_of(request)
    values = _checked(ledger, await read_json_object(request), creating=True)
    caller = caller_of(request)
    async with ledger.pool.acquire() as proxy:
        conn = cast(asyncpg.Connection, proxy)  # the pool's proxy is a connection to the stubs
        secret, row = await subscription_changes.create(
            conn, ledger.secrets.master, values, caller.key_id if caller else None
        )
    return JSONResponse({**row.as_json(), "secret": secret}, 201)


async def list_all(request: Request) -> JSONResponse:
    rows = await subscriptions.list_subscriptions(ledger_of(request).pool)
    return JSONResponse({"webhooks": [row.as_json() for row in rows]})


async def show(request: Request) -> JSONResponse:
    ledger = ledger_of(request)
    return JSONResponse((await _found(ledger, _webhook_id(request))).as_json())


async def update(request: Request) -> JSONResponse:
    """Change url, events, description or enabled; include_identifiers is fixed at creation."""
    ledger = ledger_of(request)
    webhook_id = _webhook_id(request)
    values = _checked(ledger, await read_json_object(request), creating=False)
    found = await _found(ledger, webhook_id)
    problems = change_problems(values, url=found.url, include_identifiers=found.include_identifiers)
    if problems:
        raise invalid([_error(p) for p in problems])
    row = await subscriptions.update_subscription(ledger.pool, webhook_id, values)
    if row is None:
        raise _not_found(str(webhook_id))
    return JSONResponse(row.as_json())


async def delete(request: Request) -> Response:
    webhook_id = _webhook_id(request)
    if not await subscriptions.delete_subscription(ledger_of(request).pool, webhook_id):
        raise _not_found(str(webhook_id))
    return Response(status_code=204)


async def rotate_secret(request: Request) -> JSONResponse:
    """A new secret, shown this once; the previous one keeps signing for a day beside it, or
    stops at once with `{"retire_previous": "now"}` (it leaked)."""
    ledger = ledger_of(request)
    webhook_id = _webhook_id(request)
    bodiless = (
        "content-type" not in request.headers and request.headers.get("content-length", "0") == "0"
    )
    retire_now, problems = check_rotation({} if bodiless else await read_json_object(request))
    if problems:
        raise invalid([_error(p) for p in problems])
    async with ledger.pool.acquire() as proxy:
        conn = cast(asyncpg.Connection, proxy)
        rotated = await subscription_changes.rotate(
            conn, ledger.secrets.master, webhook_id, retire_previous_now=retire_now
        )
    if rotated is None:
        raise _not_found(str(webhook_id))
    secret, retires_at = rotated
    return JSONResponse(
        {"id": str(webhook_id), "secret": secret, "previous_secret_retires_at": rfc3339(retires_at)}
    )


_EVENTS: Final = {
    "type": "array",
    "items": {"type": "string", "enum": list(WEBHOOK_EVENT_TYPES)},
}
_WEBHOOK: Final = obj(
    {
        "id": UUID,
        "url": STRING,
        "events": _EVENTS,
        "description": NULLABLE_STRING,
        "include_identifiers": BOOLEAN,
        "enabled": BOOLEAN,
        "created_at": TIME,
        "created_by": NULLABLE_STRING,
        "updated_at": TIME,
        "failing_since": NULLABLE_TIME,
        "last_success_at": NULLABLE_TIME,
        "secret_created_at": NULLABLE_TIME,
        "previous_secret_retires_at": NULLABLE_TIME,
    }
)
_ID: Final = path_param("webhook_id", UUID)
_NOT_FOUND: Final = problem_answer("no such webhook")
CREATE_OPERATION: Final[dict[str, Any]] = {
    "summary": "Subscribe a receiver to events; its signing secret is shown only here",
    "description": "`url` is https (plain http only to a loopback host where"
    " LEDGER_WEBHOOK_ALLOW_LOOPBACK allows it), with no user name or password, and not a"
    " private, link-local or otherwise internal address. With `include_identifiers`, every"
    " delivery's `data.identifiers` lists the subject's e-mail addresses and phone numbers.",
    "requestBody": request_body(
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["url", "events"],
            "properties": {
                "url": STRING,
                "events": _EVENTS,
                "description": NULLABLE_STRING,
                "include_identifiers": BOOLEAN,
            },
        }
    ),
    "responses": {
        "201": json_answer(
            "subscribed; `secret` (whsec_...) is shown only here",
            {
                **_WEBHOOK,
                "required": [*_WEBHOOK["required"], "secret"],
                "properties": {**_WEBHOOK["properties"], "secret": STRING},
            },
        ),
        "4XX": PROBLEM,
    },
}
LIST_OPERATION: Final[dict[str, Any]] = {
    "summary": "The webhook subscriptions (never their secrets)",
    "responses": {
        "200": json_answer("every subscription", obj({"webhooks": array(_WEBHOOK)})),
        "4XX": PROBLEM,
    },
}
SHOW_OPERATION: Final[dict[str, Any]] = {
    "summary": "A webhook subscription: its state and secret rotation (never the secret)",
    "parameters": [_ID],
    "responses": {
        "200": json_answer("the subscription", _WEBHOOK),
        "404": _NOT_FOUND,
        "4XX": PROBLEM,
    },
}
UPDATE_OPERATION: Final[dict[str, Any]] = {
    "summary": "Change a subscription's url, events, description or enabled",
    "description": "Only the fields given change. include_identifiers is fixed at creation:"
    " to change what a receiver gets, subscribe it anew. For the same reason the url of a"
    " subscription with include_identifiers cannot change (422): a new URL is a new recipient"
    " of personal data; subscribe it anew.",
    "parameters": [_ID],
    "requestBody": request_body(
        {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "url": STRING,
                "events": _EVENTS,
                "description": NULLABLE_STRING,
                "enabled": BOOLEAN,
            },
        }
    ),
    "responses": {"200": json_answer("changed", _WEBHOOK), "404": _NOT_FOUND, "4XX": PROBLEM},
}
DELETE_OPERATION: Final[dict[str, Any]] = {
    "summary": "Delete a subscription with its pending and past deliveries",
    "parameters": [_ID],
    "responses": {"204": {"description": "deleted"}, "404": _NOT_FOUND, "4XX": PROBLEM},
}
ROTATE_OPERATION: Final[dict[str, Any]] = {
    "summary": "Issue a new signing secret; the previous one signs beside it for a day",
    "description": 'The body is optional. `retire_previous: "now"` (a leaked secret): the'
    " previous secrets are deleted at once and only the new one signs.",
    "parameters": [_ID],
    "requestBody": {
        "required": False,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "retire_previous": {"type": "string", "enum": list(RETIRE_PREVIOUS)}
                    },
                }
            }
        },
    },
    "responses": {
        "200": json_answer(
            "the new secret, shown only here",
            obj({"id": UUID, "secret": STRING, "previous_secret_retires_at": TIME}),
        ),
        "404": _NOT_FOUND,
        "4XX": PROBLEM,
    },
}
