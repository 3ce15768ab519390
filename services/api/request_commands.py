"""Rights-request commands: each body becomes the event it appends (pure; no I/O here).

A step (verify, extend, complete, refuse) is then checked against the request as projected
(`conflict`): a closed request takes no further step, and an extension must come within the
first month and keep the whole extension within two months (GDPR Art. 12(3)). Those refusals
are 409s; bad fields are 422s, as for every command.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any, Final

from projections.periods import MAX_EXTENSION_MONTHS
from projections.requests import OPEN, RightsRequest
from schemas import events as ev
from schemas.events import Event, rfc3339
from services.api.commands import Common, Context
from services.http.body import Fields
from services.http.problems import ProblemError

MAX_TEXT: Final = 1000


def receive(f: Fields, ctx: Context) -> list[Event]:
    """Record a rights request received (Art. 12(3): answer within one month).

    The month runs from `occurred_at` (default now)."""
    common = Common(f, ctx)
    kind = f.choice("kind", ev.REQUEST_KINDS, required=True)
    reference = f.text("reference", max_len=200, free_text=True)
    f.finish()
    data = {"request_id": uuid.uuid4(), "kind": kind, "reference": reference}
    return [common.event(ev.RIGHTS_REQUEST_RECEIVED, data)]


def verify(f: Fields, ctx: Context, request: RightsRequest) -> list[Event]:
    """Record that the requester's identity was verified (Art. 12(6))."""
    common = Common(f, ctx)
    evidence = f.text("evidence", max_len=MAX_TEXT, free_text=True)
    f.finish()
    data = {"request_id": request.request_id, "evidence": evidence}
    return [common.event(ev.RIGHTS_REQUEST_IDENTITY_VERIFIED, data)]


def _months(f: Fields) -> int:
    raw = f.raw("months")
    if raw is None:
        return MAX_EXTENSION_MONTHS
    if isinstance(raw, bool) or raw not in range(1, MAX_EXTENSION_MONTHS + 1):
        f.error("months", "must be 1 or 2", [1, 2])
        return MAX_EXTENSION_MONTHS
    return int(raw)


def extend(f: Fields, ctx: Context, request: RightsRequest) -> list[Event]:
    """Record an extension of the deadline by 1 or 2 months (Art. 12(3)).

    The reason is the one the subject is told within the first month."""
    common = Common(f, ctx)
    months = _months(f)
    reason = f.text("reason", required=True, max_len=MAX_TEXT, free_text=True)
    f.finish()
    data = {"request_id": request.request_id, "months": months, "reason": reason}
    return [common.event(ev.RIGHTS_REQUEST_EXTENDED, data)]


def complete(f: Fields, ctx: Context, request: RightsRequest) -> list[Event]:
    """Record that the request was answered."""
    common = Common(f, ctx)
    evidence = f.text("evidence", max_len=MAX_TEXT, free_text=True)
    f.finish()
    data = {"request_id": request.request_id, "evidence": evidence}
    return [common.event(ev.RIGHTS_REQUEST_COMPLETED, data)]


def refuse(f: Fields, ctx: Context, request: RightsRequest) -> list[Event]:
    """Record a refusal to act, with the reason told to the subject (Art. 12(4)-(5))."""
    common = Common(f, ctx)
    reason = f.text("reason", required=True, max_len=MAX_TEXT, free_text=True)
    f.finish()
    data = {"request_id": request.request_id, "reason": reason}
    return [common.event(ev.RIGHTS_REQUEST_REFUSED, data)]


def conflict(request: RightsRequest, step: Event) -> ProblemError | None:
    """Why the projected request cannot take `step` now (a 409), or None."""
    if request.status != OPEN:
        detail = f"the request is {request.status}; it takes no further step"
        return ProblemError(409, "Request closed", detail, kind="request-closed")
    if step.type != ev.RIGHTS_REQUEST_EXTENDED:
        return None
    if request.extended_months + step.data["months"] > MAX_EXTENSION_MONTHS:
        detail = (
            f"the request is already extended by {request.extended_months} month(s); at most"
            f" {MAX_EXTENSION_MONTHS} in all (Art. 12(3))"
        )
    elif step.occurred_at.astimezone(UTC).date() > request.first_due_on:
        detail = (
            f"an extension must be told within the first month, by {request.first_due_on}"
            " (Art. 12(3))"
        )
    else:
        return None
    return ProblemError(409, "Extension not allowed", detail, kind="extension-not-allowed")


StepBuilder = Callable[[Fields, Context, RightsRequest], list[Event]]

#: path under /v1/requests/{request_id}/ -> builder
STEPS: Final[dict[str, StepBuilder]] = {
    "verify": verify,
    "extend": extend,
    "complete": complete,
    "refuse": refuse,
}


def request_json(request: RightsRequest, today: date) -> dict[str, Any]:
    """A request as the API shows it; `today` decides `overdue`."""

    def iso(moment: datetime | None) -> str | None:
        return rfc3339(moment) if moment is not None else None

    return {
        "request_id": str(request.request_id),
        "subject_id": request.subject_id,
        "kind": request.kind,
        "reference": request.reference,
        "status": request.status,
        "received_at": iso(request.received_at),
        "verified_at": iso(request.verified_at),
        "extended_months": request.extended_months,
        "extension_reason": request.extension_reason,
        "due_on": request.due_on.isoformat(),
        "overdue": request.overdue(today),
        "closed_at": iso(request.closed_at),
        "outcome_note": request.outcome_note,
        "events": [str(e) for e in request.event_ids],
    }
