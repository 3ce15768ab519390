"""Rights requests in pure logic: calendar months and due dates (Art. 12(3)), ISO 8601
durations, the fold of a request's events and the steps the API refuses."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from projections.periods import Duration, DurationError, add_months, due_on, parse_duration
from projections.requests import (
    COMPLETED,
    OPEN,
    REFUSED,
    RightsRequest,
    fold_event,
    prometheus_gauges,
)
from schemas import events as ev
from schemas.events import Event
from services.api.commands import Context
from services.api.request_commands import STEPS, conflict, receive, request_json
from services.http.body import Fields
from services.http.problems import ProblemError
from tests.unit.event_log import CATALOGUE


def at(y: int, m: int, d: int, hour: int = 12) -> datetime:
    return datetime(y, m, d, hour, tzinfo=UTC)


P = pytest.param
DUE = [
    P(at(2026, 3, 5), 0, date(2026, 4, 5), id="same-day-next-month"),
    P(at(2026, 1, 31), 0, date(2026, 2, 28), id="31-jan-to-end-of-february"),
    P(at(2028, 1, 31), 0, date(2028, 2, 29), id="leap-year"),
    P(at(2026, 1, 30), 0, date(2026, 2, 28), id="30-jan-also-end-of-february"),
    P(at(2026, 3, 31), 0, date(2026, 4, 30), id="31-mar-to-30-apr"),
    P(at(2026, 2, 28), 0, date(2026, 3, 28), id="end-of-february-is-not-end-of-march"),
    P(at(2026, 12, 15), 0, date(2027, 1, 15), id="over-the-year-end"),
    P(at(2026, 1, 31), 1, date(2026, 3, 31), id="extended-one-month-from-receipt"),
    P(at(2026, 1, 31), 2, date(2026, 4, 30), id="extended-two-not-chained-through-february"),
    P(at(2026, 11, 30), 2, date(2027, 2, 28), id="extended-over-the-year-end"),
    P(at(2026, 3, 5, 23), 0, date(2026, 4, 5), id="late-in-the-day-counts-that-day"),
    P(datetime(2026, 3, 1, 0, 30, tzinfo=UTC) - timedelta(hours=2), 0, date(2026, 3, 28),
      id="its-utc-date-counts"),
]  # fmt: skip


@pytest.mark.parametrize(("received", "extended", "due"), DUE)
def test_due_dates(received: datetime, extended: int, due: date) -> None:
    assert due_on(received, extended) == due


@given(st.dates(date(1990, 1, 1), date(2200, 1, 1)), st.integers(0, 48))
def test_adding_months_lands_in_the_right_month_never_past_the_day(start: date, n: int) -> None:
    moved = add_months(start, n)
    assert (moved.year * 12 + moved.month) - (start.year * 12 + start.month) == n
    assert moved.day <= start.day
    if moved.day < start.day:  # clamped: the month has no such day
        assert (moved + timedelta(days=1)).month != moved.month


@pytest.mark.parametrize(
    ("text", "duration"),
    [
        ("P3Y", Duration(36)),
        ("P13M", Duration(13)),
        ("P1Y6M", Duration(18)),
        ("P30D", Duration(0, timedelta(days=30))),
        ("P2W", Duration(0, timedelta(days=14))),
        ("PT12H", Duration(0, timedelta(hours=12))),
        ("P1DT2H3M4S", Duration(0, timedelta(days=1, hours=2, minutes=3, seconds=4))),
    ],
)
def test_durations(text: str, duration: Duration) -> None:
    assert parse_duration(text) == duration


@pytest.mark.parametrize("text", ["", "P", "PT", "3Y", "P1.5Y", "-P1Y", "P1YT", "P1X", "1 year"])
def test_not_durations(text: str) -> None:
    with pytest.raises(DurationError, match="ISO 8601 duration"):
        parse_duration(text)


def test_a_duration_after_an_instant_counts_calendar_months() -> None:
    assert parse_duration("P1M").after(at(2026, 1, 31)) == at(2026, 2, 28)
    assert parse_duration("P1MT1H").after(at(2026, 1, 31)) == at(2026, 2, 28, 13)


# --- the fold -----------------------------------------------------------------------------------

RID = UUID("6b1f4d1e-1111-4c4c-8a8a-000000000001")


def event(event_type: str, n: int, **data: Any) -> Event:
    return Event(
        event_type,
        UUID(int=n),
        "cust-1",
        at(2026, 1, 31) + timedelta(days=n),
        at(2026, 1, 31) + timedelta(days=n),
        data={"request_id": RID, **data},
    )


RECEIVED = event(ev.RIGHTS_REQUEST_RECEIVED, 0, kind="erasure", reference="T-1")
VERIFIED = event(ev.RIGHTS_REQUEST_IDENTITY_VERIFIED, 1, evidence=None)
EXTENDED = event(ev.RIGHTS_REQUEST_EXTENDED, 2, months=1, reason="many requests")
EXTENDED_AGAIN = event(ev.RIGHTS_REQUEST_EXTENDED, 3, months=2, reason="still many")
COMPLETE = event(ev.RIGHTS_REQUEST_COMPLETED, 4, evidence="answer sent")
REFUSE = event(ev.RIGHTS_REQUEST_REFUSED, 5, reason="manifestly unfounded")
VERIFIED_LATE = event(ev.RIGHTS_REQUEST_IDENTITY_VERIFIED, 6, evidence=None)


def fold_all(*events: Event) -> RightsRequest | None:
    request: RightsRequest | None = None
    for e in events:
        request = fold_event(request, e)
    return request


FOLDS = [
    P([RECEIVED], OPEN, None, 0, date(2026, 2, 28), None, id="received"),
    P([RECEIVED, VERIFIED], OPEN, at(2026, 2, 1), 0, date(2026, 2, 28), None, id="verified"),
    P([RECEIVED, VERIFIED, VERIFIED_LATE], OPEN, at(2026, 2, 1), 0, date(2026, 2, 28), None,
      id="the-first-verification-counts"),
    P([RECEIVED, EXTENDED], OPEN, None, 1, date(2026, 3, 31), None, id="extended"),
    P([RECEIVED, EXTENDED, EXTENDED_AGAIN], OPEN, None, 2, date(2026, 4, 30), None,
      id="extensions-capped-at-two-months"),
    P([RECEIVED, COMPLETE], COMPLETED, None, 0, date(2026, 2, 28), "answer sent", id="completed"),
    P([RECEIVED, REFUSE], REFUSED, None, 0, date(2026, 2, 28), "manifestly unfounded",
      id="refused"),
    P([RECEIVED, COMPLETE, REFUSE, EXTENDED, VERIFIED], COMPLETED, None, 0, date(2026, 2, 28),
      "answer sent", id="closed-stays-closed"),
]  # fmt: skip


@pytest.mark.parametrize(("events", "status", "verified", "months", "due", "note"), FOLDS)
def test_the_fold(
    events: list[Event],
    status: str,
    verified: datetime | None,
    months: int,
    due: date,
    note: str | None,
) -> None:
    request = fold_all(*events)
    assert request is not None
    assert (request.status, request.verified_at, request.extended_months) == (
        status,
        verified,
        months,
    )
    assert (request.due_on, request.outcome_note) == (due, note)
    assert request.event_ids[0] == RECEIVED.event_id
    assert (request.kind, request.reference, request.subject_id) == ("erasure", "T-1", "cust-1")


def test_steps_of_an_unknown_request_and_a_second_receipt_are_ignored() -> None:
    assert fold_all(VERIFIED, COMPLETE) is None
    again = event(ev.RIGHTS_REQUEST_RECEIVED, 9, kind="access", reference=None)
    assert fold_all(RECEIVED, again) == fold_all(RECEIVED)


@pytest.mark.parametrize(
    ("events", "today", "overdue"),
    [
        ([RECEIVED], date(2026, 2, 28), False),
        ([RECEIVED], date(2026, 3, 1), True),
        ([RECEIVED, EXTENDED], date(2026, 3, 31), False),
        ([RECEIVED, EXTENDED], date(2026, 4, 1), True),
        ([RECEIVED, COMPLETE], date(2027, 1, 1), False),
    ],
)
def test_overdue_is_open_after_the_due_day(events: list[Event], today: date, overdue: bool) -> None:
    request = fold_all(*events)
    assert request is not None and request.overdue(today) is overdue
    assert request_json(request, today)["overdue"] is overdue


# --- the commands -------------------------------------------------------------------------------


def opened() -> RightsRequest:
    request = fold_all(RECEIVED)
    assert request is not None
    return request


OPENED = opened()


def step(name: str, body: dict[str, Any]) -> list[Event]:
    return STEPS[name](Fields(body), Context("cust-1", at(2026, 2, 10), CATALOGUE), OPENED)


def test_a_receipt_gets_a_fresh_request_id() -> None:
    ctx = Context("cust-1", at(2026, 2, 1), CATALOGUE)
    first, second = (receive(Fields({"kind": "access"}), ctx)[0] for _ in range(2))
    assert first.type == ev.RIGHTS_REQUEST_RECEIVED
    assert first.data["request_id"] != second.data["request_id"]
    assert first.data["kind"] == "access" and first.occurred_at == at(2026, 2, 1)


@pytest.mark.parametrize(
    ("name", "body", "field"),
    [
        ("extend", {}, "reason"),
        ("extend", {"reason": "busy", "months": 3}, "months"),
        ("extend", {"reason": "busy", "months": True}, "months"),
        ("refuse", {}, "reason"),
        ("refuse", {"reason": "write to ada@example.com"}, "reason"),
        ("complete", {"evidence": "x" * 1001}, "evidence"),
        ("verify", {"how": "passport"}, "how"),
    ],
)
def test_bad_step_bodies_name_the_field(name: str, body: dict[str, Any], field: str) -> None:
    with pytest.raises(ProblemError) as caught:
        step(name, body)
    assert caught.value.status == 422
    assert field in {e["field"] for e in caught.value.errors}


@pytest.mark.parametrize(
    ("request_", "body", "now", "kind"),
    [
        (fold_all(RECEIVED, COMPLETE), {"reason": "busy"}, at(2026, 2, 10), "request-closed"),
        (fold_all(RECEIVED, REFUSE), {"reason": "busy"}, at(2026, 2, 10), "request-closed"),
        (OPENED, {"reason": "busy"}, at(2026, 3, 1), "extension-not-allowed"),
        (fold_all(RECEIVED, EXTENDED), {"reason": "busy"}, at(2026, 2, 10),
         "extension-not-allowed"),
        (fold_all(RECEIVED, EXTENDED), {"reason": "busy", "months": 1}, at(2026, 2, 10), None),
        (OPENED, {"reason": "busy"}, at(2026, 2, 28, 23), None),
    ],
)  # fmt: skip
def test_the_steps_a_request_refuses(
    request_: RightsRequest | None, body: dict[str, Any], now: datetime, kind: str | None
) -> None:
    assert request_ is not None
    [extension] = STEPS["extend"](Fields(body), Context("cust-1", now, CATALOGUE), request_)
    why = conflict(request_, extension)
    assert (why.kind if why else None) == kind
    if why is not None:
        assert why.status == 409


def test_the_metric_text() -> None:
    text = prometheus_gauges(3, 1)
    assert "# TYPE ledger_rights_requests_overdue gauge\nledger_rights_requests_overdue 1\n" in text
    assert "ledger_rights_requests_open 3\n" in text
