"""Rights requests (table `rights_requests`): each request is the fold of its events.
The same concept as services/api/requests.py, on the projections' side.

Design: docs/developers/design/rights-requests.md
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Final
from uuid import UUID

import asyncpg

from projections.journal import JournalRow
from projections.periods import MAX_EXTENSION_MONTHS, due_on
from schemas import events as ev
from schemas.events import Event

log = logging.getLogger(__name__)

OPEN: Final = "open"
COMPLETED: Final = "completed"
REFUSED: Final = "refused"
STATUSES: Final = (OPEN, COMPLETED, REFUSED)


@dataclass(frozen=True, slots=True)
class RightsRequest:
    request_id: UUID
    subject_id: str
    kind: str
    received_at: datetime
    event_ids: tuple[UUID, ...]
    reference: str | None = None
    verified_at: datetime | None = None
    extended_months: int = 0
    extension_reason: str | None = None
    extended_at: datetime | None = None
    status: str = OPEN
    closed_at: datetime | None = None
    outcome_note: str | None = None

    @property
    def due_on(self) -> date:
        """The last day to answer: a calendar month from receipt, plus the extension."""
        return due_on(self.received_at, self.extended_months)

    @property
    def first_due_on(self) -> date:
        """The deadline before any extension: an extension must be told by then."""
        return due_on(self.received_at)

    def overdue(self, today: date) -> bool:
        return self.status == OPEN and today > self.due_on


def fold_event(request: RightsRequest | None, event: Event) -> RightsRequest | None:
    """The request after `event` (one of `ev.RIGHTS_REQUEST_EVENTS` for it)."""
    data = event.data
    if event.type == ev.RIGHTS_REQUEST_RECEIVED:
        if request is not None:
            return request
        return RightsRequest(
            request_id=data["request_id"],
            subject_id=event.subject_id,
            kind=data["kind"],
            received_at=event.occurred_at,
            event_ids=(event.event_id,),
            reference=data.get("reference"),
        )
    if request is None or request.status != OPEN:
        return request
    seen = replace(request, event_ids=(*request.event_ids, event.event_id))
    match event.type:
        case ev.RIGHTS_REQUEST_IDENTITY_VERIFIED:
            return replace(seen, verified_at=request.verified_at or event.occurred_at)
        case ev.RIGHTS_REQUEST_EXTENDED:
            months = min(MAX_EXTENSION_MONTHS, request.extended_months + data["months"])
            return replace(
                seen,
                extended_months=months,
                extension_reason=data["reason"],
                extended_at=event.occurred_at,
            )
        case ev.RIGHTS_REQUEST_COMPLETED:
            return replace(
                seen,
                status=COMPLETED,
                closed_at=event.occurred_at,
                outcome_note=data.get("evidence"),
            )
        case ev.RIGHTS_REQUEST_REFUSED:
            return replace(
                seen, status=REFUSED, closed_at=event.occurred_at, outcome_note=data["reason"]
            )
    return request


_COLUMNS: Final = (
    "request_id, subject_id, kind, reference, received_at, verified_at, extended_months,"
    " extension_reason, extended_at, status, closed_at, outcome_note, event_ids"
)

#: one row per changed request (a batch holds few request events)
UPSERT = f"""
INSERT INTO rights_requests AS r ({_COLUMNS}, due_on)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
ON CONFLICT (request_id) DO UPDATE SET
    verified_at = EXCLUDED.verified_at, extended_months = EXCLUDED.extended_months,
    extension_reason = EXCLUDED.extension_reason, extended_at = EXCLUDED.extended_at,
    status = EXCLUDED.status, closed_at = EXCLUDED.closed_at,
    outcome_note = EXCLUDED.outcome_note, event_ids = EXCLUDED.event_ids,
    due_on = EXCLUDED.due_on
"""


def from_row(row: asyncpg.Record) -> RightsRequest:
    return RightsRequest(
        request_id=row["request_id"],
        subject_id=row["subject_id"],
        kind=row["kind"],
        received_at=row["received_at"],
        event_ids=tuple(row["event_ids"]),
        reference=row["reference"],
        verified_at=row["verified_at"],
        extended_months=row["extended_months"],
        extension_reason=row["extension_reason"],
        extended_at=row["extended_at"],
        status=row["status"],
        closed_at=row["closed_at"],
        outcome_note=row["outcome_note"],
    )


async def apply(conn: asyncpg.Connection, fresh: Sequence[JournalRow]) -> None:
    """Fold the batch's request events, in log order, into their rows (in its transaction)."""
    events = [
        r.event
        for r in sorted(fresh, key=lambda r: (r.partition, r.offset))
        if r.event.type in ev.RIGHTS_REQUEST_EVENTS
    ]
    if not events:
        return
    ids = list(dict.fromkeys(e.data["request_id"] for e in events))
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM rights_requests WHERE request_id = ANY($1::uuid[])", ids
    )
    held: dict[UUID, RightsRequest | None] = dict.fromkeys(ids)
    held.update({r["request_id"]: from_row(r) for r in rows})
    for event in events:
        request_id = event.data["request_id"]
        folded = fold_event(held[request_id], event)
        if folded is None:
            log.warning("%s %s names an unknown request; ignored", event.type, event.event_id)
        held[request_id] = folded
    await conn.executemany(
        UPSERT,
        [
            (
                r.request_id,
                r.subject_id,
                r.kind,
                r.reference,
                r.received_at,
                r.verified_at,
                r.extended_months,
                r.extension_reason,
                r.extended_at,
                r.status,
                r.closed_at,
                r.outcome_note,
                list(r.event_ids),
                r.due_on,
            )
            for r in held.values()
            if r is not None
        ],
    )


async def get(conn: asyncpg.Connection | asyncpg.Pool, request_id: UUID) -> RightsRequest | None:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM rights_requests WHERE request_id = $1", request_id
    )
    return from_row(row) if row is not None else None


#: $1-$2 the cursor (due_on, request_id), $3 the limit, $4 today for `overdue`
_PAGE: Final = (
    f"SELECT {_COLUMNS} FROM rights_requests WHERE {{}} AND (due_on, request_id) > ($1, $2)"
    " ORDER BY due_on, request_id LIMIT $3"
)
PAGES: Final = {
    "open": _PAGE.format("status = 'open'"),
    "overdue": _PAGE.format("status = 'open' AND due_on < $4"),
    "closed": _PAGE.format("status <> 'open'"),
}


async def page(
    conn: asyncpg.Connection | asyncpg.Pool,
    status: str,
    today: date,
    after: tuple[date, UUID],
    limit: int,
) -> list[RightsRequest]:
    """Requests of a status filter (`PAGES`) in (due_on, request_id) order after `after`;
    `overdue` are the open requests due before `today`."""
    args = (*after, limit, *((today,) if status == "overdue" else ()))
    rows = await conn.fetch(PAGES[status], *args)
    return [from_row(r) for r in rows]


async def counts(conn: asyncpg.Connection | asyncpg.Pool, today: date) -> tuple[int, int]:
    """(open, overdue) requests on `today`."""
    row = await conn.fetchrow(
        "SELECT count(*) AS open, count(*) FILTER (WHERE due_on < $1) AS overdue"
        " FROM rights_requests WHERE status = 'open'",
        today,
    )
    assert row is not None
    return row["open"], row["overdue"]


OPEN_GAUGE: Final = "ledger_rights_requests_open"
OVERDUE_GAUGE: Final = "ledger_rights_requests_overdue"


def prometheus_gauges(open_count: int, overdue_count: int) -> str:
    """The two request gauges in the Prometheus text format (0.0.4)."""
    return (
        f"# HELP {OPEN_GAUGE} Rights requests received and neither completed nor refused.\n"
        f"# TYPE {OPEN_GAUGE} gauge\n"
        f"{OPEN_GAUGE} {open_count}\n"
        f"# HELP {OVERDUE_GAUGE} Open rights requests past their due date (GDPR Art. 12(3)).\n"
        f"# TYPE {OVERDUE_GAUGE} gauge\n"
        f"{OVERDUE_GAUGE} {overdue_count}\n"
    )
