"""CSV cells for spreadsheets: a cell a spreadsheet would read as a formula (= + - @ TAB CR
first) is prefixed with `'` when asked, every other cell is written as it is, and without the
guard every value reads back exactly."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.http.csv_text import FORMULA_STARTS, csv_bytes, spreadsheet_cell


def records_of(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=cmd|' /C calc'!A0@example.com", "'=cmd|' /C calc'!A0@example.com"),
        ("+358401234567", "'+358401234567"),
        ("-2+3@example.com", "'-2+3@example.com"),
        ("@SUM(A1)@example.com", "'@SUM(A1)@example.com"),
        ("\t=1@example.com", "'\t=1@example.com"),
        ("\r=1@example.com", "'\r=1@example.com"),
        ("anna@example.fi", "anna@example.fi"),
        ("a=b@example.com", "a=b@example.com"),
        ("", ""),
    ],
)
def test_a_formula_start_is_prefixed_and_nothing_else(value: str, expected: str) -> None:
    assert spreadsheet_cell(value) == expected


@given(st.lists(st.lists(st.text(max_size=20), min_size=1, max_size=4), max_size=10))
def test_raw_values_read_back_exactly(records: list[list[str]]) -> None:
    assert records_of(csv_bytes(records)) == records


@given(st.lists(st.lists(st.text(max_size=20), min_size=1, max_size=4), max_size=10))
def test_guarded_cells_never_start_a_formula(records: list[list[str]]) -> None:
    back = records_of(csv_bytes(records, spreadsheet_safe=True))
    assert all(not cell.startswith(FORMULA_STARTS) for record in back for cell in record)
    assert back == [[spreadsheet_cell(c) for c in r] for r in records]
