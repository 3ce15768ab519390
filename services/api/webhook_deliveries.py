"""GET /v1/webhooks/{id}/deliveries and POST /v1/webhooks/{id}/deliveries/{delivery_id}/
redeliver (admin): what the dispatcher did with a subscription's deliveries, attempt by
attempt, and sending one again. The SQL: projections/webhook_deliveries.py.

Design: docs/developers/design/webhooks.md
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlencode
from uuid import UUID

from starlette.requests import Request
from starlette.responses import JSONResponse

from projections import webhook_deliveries as deliveries
from services.http.app_state import ledger_of
from services.http.openapi_parts import (
    INTEGER,
    NULLABLE_STRING,
    NULLABLE_TIME,
    PAGE_OF,
    PROBLEM,
    STRING,
    TIME,
    array,
    json_answer,
    obj,
    path_param,
    problem_answer,
    query_param,
)
from services.http.openapi_parts import UUID as UUID_SCHEMA
from services.http.problems import ProblemError, field_error, invalid

PATH: Final = "/v1/webhooks/{webhook_id}/deliveries"
REDELIVER_PATH: Final = "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver"
DEFAULT_LIMIT: Final = 50
MAX_LIMIT: Final = 500
_QUERY: Final = frozenset({"status", "limit", "cursor"})


def _uuid(value: str, name: str) -> UUID:
    try:
        return UUID(value[:64])
    except ValueError:
        raise ProblemError(
            404, "Not found", f"no {name} {value[:64]!r}", kind="not-found"
        ) from None


#: longer than any cursor encode_cursor makes (about 100 characters)
MAX_CURSOR: Final = 200


def encode_cursor(created_at: datetime, delivery_id: UUID) -> str:
    """The `cursor` of the page after the delivery (created_at, id), the last one shown."""
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{delivery_id}".encode()).decode()


def decode_cursor(raw: str) -> tuple[datetime, UUID] | None:
    """The position encode_cursor encoded, or None for anything it cannot have made: too
    long, not base64, no '|', not a time with its offset (nor one in UTC's range), not a
    UUID."""
    if len(raw) > MAX_CURSOR:
        return None
    try:
        at, bar, last = base64.urlsafe_b64decode(raw.encode("ascii")).decode().partition("|")
        moment, delivery_id = datetime.fromisoformat(at), UUID(last)
        if not bar or moment.tzinfo is None or moment.utcoffset() is None:
            return None
        return moment.astimezone(UTC), delivery_id
    except (binascii.Error, UnicodeError, ValueError, OverflowError):
        return None


async def list_deliveries(request: Request) -> JSONResponse:
    """A subscription's deliveries, newest first, with every attempt."""
    ledger = ledger_of(request)
    webhook_id = _uuid(request.path_params["webhook_id"], "webhook")
    query = request.query_params
    errors = [
        field_error(n[:64], "is not a parameter of this list") for n in query if n not in _QUERY
    ]
    status = query.get("status")
    if status is not None and status not in deliveries.STATUSES:
        errors.append(field_error("status", "is not a delivery status", list(deliveries.STATUSES)))
    limit = DEFAULT_LIMIT
    raw_limit = query.get("limit")
    if raw_limit is not None:
        digits = len(raw_limit) <= 6 and raw_limit.isascii() and raw_limit.isdecimal()
        if not digits or not 1 <= int(raw_limit) <= MAX_LIMIT:
            errors.append(field_error("limit", f"must be a whole number from 1 to {MAX_LIMIT}"))
        else:
            limit = int(raw_limit)
    raw_cursor = query.get("cursor")
    before = decode_cursor(raw_cursor) if raw_cursor is not None else None
    if raw_cursor is not None and before is None:
        errors.append(field_error("cursor", "is not a cursor this list gave"))
    if errors:
        raise invalid(errors)
    if await deliveries.target(ledger.pool, webhook_id) is None:
        raise ProblemError(404, "Not found", f"no webhook {webhook_id}", kind="not-found")
    rows = await deliveries.listing(
        ledger.pool, webhook_id, status=status, before=before, limit=limit + 1
    )
    page, more = rows[:limit], len(rows) > limit
    following = None
    if more:
        params = {"limit": str(limit), "cursor": encode_cursor(page[-1].created_at, page[-1].id)}
        if status is not None:
            params["status"] = status
        following = f"{PATH.format(webhook_id=webhook_id)}?{urlencode(params)}"
    return JSONResponse({"deliveries": [r.body for r in page], "next": following})


async def redeliver(request: Request) -> JSONResponse:
    """Send a delivery again: pending and due now, with a new retry window (202). A disabled
    subscription sends nothing: 409, rather than a promise nothing keeps."""
    ledger = ledger_of(request)
    webhook_id = _uuid(request.path_params["webhook_id"], "webhook")
    delivery_id = _uuid(request.path_params["delivery_id"], "delivery")
    target = await deliveries.target(ledger.pool, webhook_id)
    if target is None:
        raise ProblemError(404, "Not found", f"no webhook {webhook_id}", kind="not-found")
    if not target.enabled:
        raise ProblemError(
            409,
            "Webhook disabled",
            f"webhook {webhook_id} is disabled and sends nothing: enable it"
            " (PATCH enabled: true), then redeliver",
            kind="webhook-disabled",
        )
    if not await deliveries.redeliver(ledger.pool, webhook_id, delivery_id):
        raise ProblemError(
            404,
            "Not found",
            f"webhook {webhook_id} has no delivery {delivery_id}",
            kind="not-found",
        )
    return JSONResponse({"id": str(delivery_id), "status": deliveries.PENDING}, 202)


_ATTEMPT: Final = obj(
    {
        "attempt": INTEGER,
        "started_at": TIME,
        "duration_ms": INTEGER,
        "response_code": {"type": ["integer", "null"]},
        "outcome": {"enum": ["succeeded", "failed", "timeout", "refused"]},
        "error": NULLABLE_STRING,
    }
)
_DELIVERY: Final = obj(
    {
        "id": UUID_SCHEMA,
        "event_id": UUID_SCHEMA,
        "event_type": STRING,
        "subject_id": STRING,
        "status": {"enum": list(deliveries.STATUSES)},
        "attempt_count": INTEGER,
        "created_at": TIME,
        "next_attempt_at": NULLABLE_TIME,
        "last_attempt_at": NULLABLE_TIME,
        "attempts": array(_ATTEMPT),
    }
)
_WEBHOOK_ID: Final = path_param("webhook_id", UUID_SCHEMA)
LIST_OPERATION: Final[dict[str, Any]] = {
    "summary": "A webhook's deliveries and their attempts, newest first",
    "parameters": [
        _WEBHOOK_ID,
        query_param("status", schema={"enum": list(deliveries.STATUSES)}),
        query_param("limit", schema={**INTEGER, "minimum": 1, "maximum": MAX_LIMIT}),
        query_param("cursor"),
    ],
    "responses": {
        "200": json_answer(
            "one page; `next` links the following one",
            obj({"deliveries": array(_DELIVERY), **PAGE_OF}),
        ),
        "404": problem_answer("no such webhook"),
        "4XX": PROBLEM,
    },
}
REDELIVER_OPERATION: Final[dict[str, Any]] = {
    "summary": "Send a delivery again, now, with a new retry window",
    "parameters": [_WEBHOOK_ID, path_param("delivery_id", UUID_SCHEMA)],
    "responses": {
        "202": json_answer(
            "pending again; the dispatcher sends it within a second",
            obj({"id": UUID_SCHEMA, "status": STRING}),
        ),
        "404": problem_answer("no such webhook or delivery"),
        "409": problem_answer("the webhook is disabled: enable it first"),
        "4XX": PROBLEM,
    },
}
