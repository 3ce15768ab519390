"""Reading whole export files: bad headers, file layout, address privacy, samples, any input."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.importing import formats
from services.importing.formats import (
    BLOCKLISTED,
    SUBSCRIBED,
    UNSUBSCRIBED,
    HeaderError,
    ImportRow,
    RowProblem,
    read,
)
from tests.unit.import_rows import GENERIC, LISTMONK, MAILCHIMP, NOW, csv_text, parse

SAMPLES = Path(formats.__file__).parent / "samples"


def test_mailchimp_cleaned_file_is_refused_whole() -> None:
    header = [*MAILCHIMP, "CLEAN_TIME", "CLEAN_CAMPAIGN_TITLE"]
    with pytest.raises(HeaderError, match=r"cleaned .* not a consent decision"):
        parse("mailchimp", header)


@pytest.mark.parametrize(
    ("format_name", "header", "missing"),
    [
        ("generic", ["email", "status"], "opted_in_at"),
        ("generic", ["e-mail", "state", "opted_in_at"], "email, status"),
        ("listmonk", ["uuid", "email", "name", "attributes", "status"], "created_at, updated_at"),
        ("listmonk", GENERIC, "created_at, updated_at"),
        ("mailchimp", ["Email", "OPTIN_TIME", "CONFIRM_TIME"], "Email Address"),
        ("mailchimp", LISTMONK, "Email Address, OPTIN_TIME, CONFIRM_TIME"),
    ],
)
def test_a_header_of_another_format_is_refused_naming_the_missing_columns(
    format_name: str, header: list[str], missing: str
) -> None:
    with pytest.raises(HeaderError, match=f"header lacks {missing} "):
        parse(format_name, header, ["x@example.com"])


def test_a_headerless_file_does_not_echo_its_first_row() -> None:
    text = "a@example.com,subscribed,2024-01-01 00:00:00\n"
    with pytest.raises(HeaderError) as raised:
        read("generic", io.StringIO(text), now=NOW)
    assert "@" not in str(raised.value)


def test_an_empty_file_is_refused() -> None:
    with pytest.raises(HeaderError, match="the file is empty"):
        read("generic", io.StringIO("\n\n"), now=NOW)


def test_a_byte_order_mark_and_blank_lines_are_tolerated_and_lines_are_physical() -> None:
    text = (
        "\ufeffemail,status,opted_in_at\r\n"
        "\r\n"
        "a@example.com,subscribed,2024-01-01 00:00:00\r\n"
        ",,\r\n"
        '"multi\nline",subscribed,2024-01-01 00:00:00\r\n'
        "b@example.com,pending,2024-01-01 00:00:00\r\n"
    )
    results = list(read("generic", io.StringIO(text, newline=""), now=NOW))
    assert [r.line for r in results] == [3, 5, 7]
    assert isinstance(results[0], ImportRow)
    assert [type(r) for r in results[1:]] == [RowProblem, RowProblem]


def test_an_address_in_a_checkers_message_never_reaches_the_reason() -> None:
    def chatty(text: str) -> str:
        raise ValueError(f"{text.upper()} has no valid domain")

    text = "email,status,opted_in_at\nann@example.com,subscribed,2024-01-01 00:00:00\n"
    [result] = read("generic", io.StringIO(text), now=NOW, check_email=chatty)
    assert isinstance(result, RowProblem)
    assert result.reason == "email: not an e-mail address"


def test_the_checker_decides_the_address_that_is_kept() -> None:
    text = "email,status,opted_in_at\n Ann@Example.COM ,subscribed,2024-01-01 00:00:00\n"
    [result] = read("generic", io.StringIO(text), now=NOW, check_email=str.lower)
    assert isinstance(result, ImportRow)
    assert result.email == "ann@example.com"


@pytest.mark.parametrize(
    ("format_name", "sample"),
    [
        ("generic", "generic.csv"),
        ("listmonk", "listmonk.csv"),
        ("mailchimp", "mailchimp.csv"),
        ("mailchimp", "mailchimp-unsubscribed.csv"),
    ],
)
def test_every_sample_has_good_and_bad_rows_and_no_reason_names_an_address(
    format_name: str, sample: str
) -> None:
    with (SAMPLES / sample).open(newline="", encoding="utf-8-sig") as stream:
        results = list(read(format_name, stream, now=NOW))
    assert 3 <= len(results) <= 8
    assert any(isinstance(r, ImportRow) for r in results)
    assert any(isinstance(r, RowProblem) for r in results)
    for result in results:
        if isinstance(result, ImportRow):
            assert result.email.endswith(("@example.com", "@example.org"))
        else:
            assert "@" not in result.reason and "example" not in result.reason


HEADERS = {"generic": GENERIC, "listmonk": LISTMONK, "mailchimp": MAILCHIMP}
FIELD = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        ["a@example.com", "subscribed", "blocklisted", "enabled", "2024-01-01 00:00:00", '"']
    ),
)


@given(
    format_name=st.sampled_from(sorted(HEADERS)),
    rows=st.lists(st.lists(FIELD, max_size=14), max_size=12),
)
def test_every_record_yields_exactly_one_result_in_line_order(
    format_name: str, rows: list[list[str]]
) -> None:
    text = csv_text(HEADERS[format_name], rows)
    results = list(read(format_name, io.StringIO(text, newline=""), now=NOW))
    records = [r for r in rows if any(f.strip() for f in r)]
    assert len(results) == len(records)
    lines = [r.line for r in results]
    assert lines == sorted(set(lines))
    assert all(line >= 2 for line in lines)
    for result, record in zip(results, records, strict=True):
        if isinstance(result, ImportRow):
            assert result.status in (SUBSCRIBED, UNSUBSCRIBED, BLOCKLISTED)
            assert (
                result.email
                == record[
                    HEADERS[format_name].index(
                        "Email Address" if format_name == "mailchimp" else "email"
                    )
                ].strip()
            )
        else:
            assert "@" not in result.reason


@given(st.text(max_size=400))
def test_arbitrary_text_never_raises_anything_but_a_header_error(text: str) -> None:
    for format_name in HEADERS:
        try:
            results = list(read(format_name, io.StringIO(text, newline=""), now=NOW))
        except HeaderError:
            continue
        lines = [r.line for r in results]
        assert lines == sorted(set(lines))
