"""What the auditor's home page and sign-in form show, built from loaded rows (pure) and rendered
with the auditor's page's Jinja2 templates. English only, like every audit page: a staff tool
(docs/auditors/signing-in.md)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from urllib.parse import quote

from projections.requests import RightsRequest
from schemas.events import rfc3339
from services.web.audit_view import render_page


@dataclass(frozen=True, slots=True)
class RequestRow:
    """One open rights request as a row of the home page."""

    due_on: str
    overdue: bool
    kind: str
    received_at: str
    verified_at: str | None
    extended_months: int
    reference: str | None
    subject_id: str
    subject_path: str


def request_rows(found: Sequence[RightsRequest], today: date) -> list[RequestRow]:
    return [
        RequestRow(
            due_on=r.due_on.isoformat(),
            overdue=r.overdue(today),
            kind=r.kind,
            received_at=rfc3339(r.received_at),
            verified_at=rfc3339(r.verified_at) if r.verified_at else None,
            extended_months=r.extended_months,
            reference=r.reference,
            subject_id=r.subject_id,
            subject_path=quote(r.subject_id, safe=""),
        )
        for r in found
    ]


def home_page(
    *,
    controller: str,
    rows: Sequence[RequestRow],
    open_count: int,
    overdue_count: int,
    today: date,
    csrf_token: str | None,
    key_id: str,
    key_name: str,
) -> str:
    return render_page(
        "audit_home.html",
        controller=controller,
        requests=list(rows),
        open_count=open_count,
        overdue_count=overdue_count,
        today=today.isoformat(),
        csrf_token=csrf_token,
        key_id=key_id,
        key_name=key_name,
    )


def sign_in_page(
    *,
    controller: str,
    csrf_token: str,
    notice: str | None,
    idle_minutes: int,
    max_hours: int,
    key_refused: bool = False,
) -> str:
    """The form; `key_refused` marks the key field invalid and described by the notice."""
    return render_page(
        "audit_sign_in.html",
        controller=controller,
        csrf_token=csrf_token,
        notice=notice,
        key_refused=key_refused,
        idle_minutes=idle_minutes,
        max_hours=max_hours,
    )
