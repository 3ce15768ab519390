"""The audience's rows as JSON lines and CSV: what a sending tool parses back with its own JSON
and CSV readers is exactly the rows, addresses and counts the stream wrote; the bulk encoding
of subject ids equals what the csv and json modules would write."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.events import SUBJECT_ID_RE
from services.api.audience_rows import (
    AudienceAsk,
    address_lines,
    end_lines,
    header_line,
    id_lines,
)
from services.rules.audience import AudienceTally
from tests.unit.event_log import CATALOGUE

NEWSLETTER = CATALOGUE.get("newsletter")
assert NEWSLETTER is not None

subject_ids = st.lists(st.from_regex(SUBJECT_ID_RE, fullmatch=True), max_size=20)
#: any text a linked address may decrypt to: commas, quotes, line breaks, non-ASCII
addresses = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)


def ask(fmt: str, *, addresses: str | None = None, reasons: bool = False) -> AudienceAsk:
    assert NEWSLETTER is not None
    return AudienceAsk(NEWSLETTER, "email", fmt, addresses, reasons, None)


def csv_records(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


def json_lines(data: bytes) -> list[Any]:
    return [json.loads(line) for line in data.decode("utf-8").split("\n") if line]


@pytest.mark.parametrize(
    ("fmt", "addresses", "reasons", "expected"),
    [
        ("jsonl", None, False, b""),
        ("jsonl", "email", True, b""),
        ("csv", None, False, b"subject_id\r\n"),
        ("csv", "email", False, b"subject_id,email\r\n"),
        ("csv", None, True, b"record,subject_id,reason,count\r\n"),
        ("csv", "phone", True, b"record,subject_id,phone,reason,count\r\n"),
    ],
)
def test_the_header_names_the_columns_of_the_shape_asked_for(
    fmt: str, addresses: str | None, reasons: bool, expected: bytes
) -> None:
    assert header_line(ask(fmt, addresses=addresses, reasons=reasons)) == expected


@pytest.mark.parametrize(
    ("fmt", "reasons", "expected"),
    [
        ("jsonl", False, b'{"subject_id":"a"}\n{"subject_id":"b-1"}\n'),
        ("jsonl", True, b'{"subject_id":"a"}\n{"subject_id":"b-1"}\n'),
        ("csv", False, b"a\r\nb-1\r\n"),
        ("csv", True, b"subject,a,,\r\nsubject,b-1,,\r\n"),
    ],
)
def test_subject_rows_in_each_shape(fmt: str, reasons: bool, expected: bytes) -> None:
    assert id_lines(ask(fmt, reasons=reasons), ["a", "b-1"]) == expected


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_no_subjects_write_nothing(fmt: str) -> None:
    assert id_lines(ask(fmt, reasons=True), []) == b""


@given(ids=subject_ids, reasons=st.booleans())
def test_bulk_ids_are_what_the_csv_writer_and_json_would_write(
    ids: list[str], reasons: bool
) -> None:
    as_csv = id_lines(ask("csv", reasons=reasons), ids)
    out = io.StringIO()
    lead, tail = (["subject"], ["", ""]) if reasons else ([], [])
    csv.writer(out, lineterminator="\r\n").writerows([[*lead, s, *tail] for s in ids])
    assert as_csv == out.getvalue().encode("utf-8")
    as_json = id_lines(ask("jsonl", reasons=reasons), ids)
    assert json_lines(as_json) == [{"subject_id": s} for s in ids]


@given(
    rows=st.lists(st.tuples(st.from_regex(SUBJECT_ID_RE, fullmatch=True), addresses), max_size=20)
)
def test_addresses_read_back_exactly_in_both_shapes(rows: list[tuple[str, str]]) -> None:
    header = csv_records(header_line(ask("csv", addresses="email", reasons=True)))
    records = csv_records(address_lines(ask("csv", addresses="email", reasons=True), rows))
    assert header == [["record", "subject_id", "email", "reason", "count"]]
    assert records == [["subject", s, a, "", ""] for s, a in rows]
    plain = csv_records(address_lines(ask("csv", addresses="email"), rows))
    assert plain == [[s, a] for s, a in rows]
    lines = json_lines(address_lines(ask("jsonl", addresses="phone"), rows))
    assert lines == [{"subject_id": s, "phone": a} for s, a in rows]


def tally(allowed: int, **left_out: int) -> AudienceTally:
    return AudienceTally(allowed, Counter(left_out))


def test_without_reasons_json_lines_still_end_with_a_summary_and_csv_keeps_its_shape() -> None:
    data = end_lines(ask("jsonl"), tally(3, withdrawn=2), 3, "tok")
    assert json_lines(data) == [{"summary": {"token": "tok", "rows": 3}}]
    assert end_lines(ask("csv"), tally(3, withdrawn=2), 3, "tok") == b""


def test_the_json_trailer_is_one_summary_line_of_the_counts() -> None:
    data = end_lines(ask("jsonl", reasons=True), tally(3, withdrawn=2, objected=1), 3, "tok")
    assert data.endswith(b"\n") and data.count(b"\n") == 1
    assert json_lines(data) == [
        {
            "summary": {
                "token": "tok",
                "considered": 6,
                "allowed": 3,
                "rows": 3,
                "left_out_by_reason": {"objected": 1, "withdrawn": 2},
            }
        }
    ]


@pytest.mark.parametrize("addresses", [None, "email"])
def test_the_csv_trailer_records_fit_the_header(addresses: str | None) -> None:
    shape = ask("csv", addresses=addresses, reasons=True)
    header = csv_records(header_line(shape))[0]
    records = csv_records(end_lines(shape, tally(4, no_address=1, withdrawn=2), 4, "tok"))
    assert all(len(r) == len(header) for r in records)
    named = [dict(zip(header, r, strict=True)) for r in records]
    assert [(r["record"], r["reason"], r["count"]) for r in named] == [
        ("allowed", "", "4"),
        ("left_out", "no_address", "1"),
        ("left_out", "withdrawn", "2"),
        ("end", "", "4"),
    ]
    assert all(r["subject_id"] == "" for r in named)


def test_spreadsheet_safe_guards_subject_ids_and_addresses_in_csv() -> None:
    assert NEWSLETTER is not None
    safe = AudienceAsk(NEWSLETTER, "email", "csv", "email", False, None, spreadsheet_safe=True)
    records = csv_records(address_lines(safe, [("-1", "=cmd|'/C calc'!A0@example.com")]))
    assert records == [["'-1", "'=cmd|'/C calc'!A0@example.com"]]
    ids = AudienceAsk(NEWSLETTER, "email", "csv", None, True, None, spreadsheet_safe=True)
    assert csv_records(id_lines(ids, ["-2-3", "a"])) == [
        ["subject", "'-2-3", "", ""],
        ["subject", "a", "", ""],
    ]


def test_without_spreadsheet_safe_an_address_is_written_as_given() -> None:
    raw = csv_records(address_lines(ask("csv", addresses="email"), [("s", "=1+1@example.com")]))
    assert raw == [["s", "=1+1@example.com"]]
