"""Reading subscriber exports: each format's columns and status mapping, bad rows, bad headers."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
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
    Parsed,
    RowProblem,
    parse_instant,
    read,
)

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
SAMPLES = Path(formats.__file__).parent / "samples"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def csv_text(header: list[str], rows: list[list[str]]) -> str:
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def parse(format_name: str, header: list[str], *rows: list[str]) -> list[Parsed]:
    text = csv_text(header, list(rows))
    return list(read(format_name, io.StringIO(text, newline=""), now=NOW))


def one(format_name: str, header: list[str], row: list[str]) -> Parsed:
    [result] = parse(format_name, header, row)
    return result


def expect(result: Parsed, expected: tuple[str, str | None, str | None] | str) -> None:
    """A tuple (status, opted_in_at, changed_at) for an ImportRow, else a reason fragment."""
    if isinstance(expected, str):
        assert isinstance(result, RowProblem), result
        assert expected in result.reason
        assert "@" not in result.reason
        return
    assert isinstance(result, ImportRow), result
    status, opted, changed = expected
    assert result.status == status
    assert result.opted_in_at == (at(opted) if opted else None)
    assert result.changed_at == (at(changed) if changed else None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-04T10:00:00Z", "2024-05-04T10:00:00"),
        ("2024-05-04t10:00:00z", "2024-05-04T10:00:00"),
        ("2024-05-04T12:00:00+02:00", "2024-05-04T10:00:00"),
        ("2024-05-04T05:30:00-0430", "2024-05-04T10:00:00"),
        ("2024-05-04 10:00:00", "2024-05-04T10:00:00"),
        ("  2024-05-04 10:00:00.25 ", "2024-05-04T10:00:00.250000"),
        ("2024-05-04 10:00:00.123456789 +0000 UTC", "2024-05-04T10:00:00.123456"),
        ("2024-05-04 12:00:00 +0200 CEST", "2024-05-04T10:00:00"),
        ("2024-05-04 15:30:00 +0530 +0530", "2024-05-04T10:00:00"),
        ("2024-05-04", None),
        ("04/05/2024 10:00", None),
        ("2024-02-30 10:00:00", None),
        ("2024-05-04 24:00:00", None),
        ("2024-05-04T10:00:00+24:00", None),
        ("2024-05-04T10:00:00 CEST", None),
        ("", None),
    ],
)
def test_instants_in_every_accepted_form(text: str, expected: str | None) -> None:
    assert parse_instant(text) == (at(expected) if expected else None)


GENERIC = ["email", "status", "opted_in_at", "changed_at", "name"]


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (
            ["a@example.com", "subscribed", "2024-01-02T03:04:05Z", "", "Ann"],
            (SUBSCRIBED, "2024-01-02T03:04:05", None),
        ),
        (
            [" a@example.com ", " Subscribed ", "2024-01-02 03:04:05", "", ""],
            (SUBSCRIBED, "2024-01-02T03:04:05", None),
        ),
        (
            ["a@example.com", "unsubscribed", "", "2024-03-01 00:00:00", ""],
            (UNSUBSCRIBED, None, "2024-03-01T00:00:00"),
        ),
        (
            ["a@example.com", "blocklisted", "2020-01-01 00:00:00", "2024-03-01 00:00:00", ""],
            (BLOCKLISTED, "2020-01-01T00:00:00", "2024-03-01T00:00:00"),
        ),
        (["a@example.com", "subscribed", "", "", ""], "opted_in_at: required for status"),
        (["a@example.com", "unsubscribed", "2020-01-01 00:00:00", "", ""], "changed_at: required"),
        (["a@example.com", "active", "2020-01-01 00:00:00", "", ""], "'active' is not accepted"),
        (["a@example.com", "", "2020-01-01 00:00:00", "", ""], "status: missing"),
        (["a@example.com", "b@example.com", "2020-01-01 00:00:00", "", ""], "the value is not"),
        (["a@example.com", "subscribed", "yesterday", "", ""], "opted_in_at: not a time"),
        (
            ["a@example.com", "subscribed", "2025-06-01 12:04:00", "", ""],
            (SUBSCRIBED, "2025-06-01T12:04:00", None),
        ),
        (["a@example.com", "subscribed", "2025-06-01 12:06:00", "", ""], "is in the future"),
        (["", "subscribed", "2020-01-01 00:00:00", "", ""], "email: missing"),
        (
            ["a@example", "subscribed", "2020-01-01 00:00:00", "", ""],
            "email: not a syntactically valid e-mail",
        ),
        (
            ["a b@example.com", "subscribed", "2020-01-01 00:00:00", "", ""],
            "not a syntactically valid",
        ),
        (
            ["a@b@example.com", "subscribed", "2020-01-01 00:00:00", "", ""],
            "not a syntactically valid",
        ),
        (
            ["a@example.com", "subscribed", "2020-01-01 00:00:00", "", "", "x"],
            "has 6 fields but the header names 5",
        ),
    ],
)
def test_generic_rows(row: list[str], expected: tuple[str, str | None, str | None] | str) -> None:
    expect(one("generic", GENERIC, row), expected)


def test_generic_short_rows_and_optional_columns() -> None:
    """Only email, status and opted_in_at are required; a short row reads the rest as empty."""
    result = one("generic", ["email", "status", "opted_in_at"], ["a@example.com", "subscribed"])
    expect(result, "opted_in_at: required")
    result = one(
        "generic",
        ["Email", "STATUS", "Opted_In_At"],
        ["a@example.com", "subscribed", "2024-01-01 00:00:00"],
    )
    expect(result, (SUBSCRIBED, "2024-01-01T00:00:00", None))


LISTMONK = ["uuid", "email", "name", "attributes", "status", "created_at", "updated_at"]
CREATED, UPDATED = "2022-03-01 09:12:44.5 +0000 UTC", "2024-02-11 12:00:00 +0200 EET"


def listmonk_row(status: str, created: str = CREATED, updated: str = UPDATED) -> list[str]:
    return ["5b1c3d0e", "a@example.com", "Ann", "{}", status, created, updated]


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (listmonk_row("enabled"), (SUBSCRIBED, "2022-03-01T09:12:44.5", "2024-02-11T10:00:00")),
        (
            listmonk_row("blocklisted"),
            (BLOCKLISTED, "2022-03-01T09:12:44.5", "2024-02-11T10:00:00"),
        ),
        (listmonk_row("disabled"), "status: 'disabled' is an administrator's switch"),
        (listmonk_row("deleted"), "status: 'deleted' is not accepted"),
        (listmonk_row("enabled", created=""), "created_at: required for status subscribed"),
        (listmonk_row("blocklisted", updated=""), "updated_at: required for status blocklisted"),
        (listmonk_row("enabled", created="2022-03-01"), "created_at: not a time"),
    ],
)
def test_listmonk_export_rows(
    row: list[str], expected: tuple[str, str | None, str | None] | str
) -> None:
    expect(one("listmonk", LISTMONK, row), expected)


@pytest.mark.parametrize(
    ("status", "subscription", "expected"),
    [
        ("enabled", "confirmed", SUBSCRIBED),
        ("enabled", "", SUBSCRIBED),
        ("enabled", "unsubscribed", UNSUBSCRIBED),
        ("disabled", "unsubscribed", UNSUBSCRIBED),
        ("blocklisted", "unsubscribed", BLOCKLISTED),
        ("blocklisted", "bogus", BLOCKLISTED),
        ("enabled", "unconfirmed", "'unconfirmed' (opt-in not confirmed) is no consent"),
        ("disabled", "confirmed", "'disabled' is an administrator's switch"),
        ("enabled", "pending", "subscription_status: 'pending' is not accepted"),
    ],
)
def test_listmonk_subscription_status_column(status: str, subscription: str, expected: str) -> None:
    """An added subscription_status column (listmonk's per-list status) refines `status`."""
    header = [*LISTMONK, "subscription_status"]
    result = one("listmonk", header, [*listmonk_row(status), subscription])
    if expected in (SUBSCRIBED, UNSUBSCRIBED, BLOCKLISTED):
        assert isinstance(result, ImportRow)
        assert result.status == expected
    else:
        expect(result, expected)


def test_listmonk_subscription_times_win_over_subscriber_times() -> None:
    header = [
        *LISTMONK,
        "subscription_status",
        "subscription_created_at",
        "subscription_updated_at",
    ]
    row = [*listmonk_row("enabled"), "unsubscribed", "2023-01-01 00:00:00", "2024-01-01 00:00:00"]
    expect(
        one("listmonk", header, row), (UNSUBSCRIBED, "2023-01-01T00:00:00", "2024-01-01T00:00:00")
    )


MAILCHIMP = ["Email Address", "First Name", "MEMBER_RATING", "OPTIN_TIME", "OPTIN_IP",
             "CONFIRM_TIME", "CONFIRM_IP", "LAST_CHANGED", "LEID", "EUID", "TAGS"]  # fmt: skip
UNSUB = [*MAILCHIMP[:7], "UNSUB_TIME", "UNSUB_CAMPAIGN_TITLE", "UNSUB_REASON", *MAILCHIMP[7:]]


def mailchimp_row(optin: str, confirm: str, changed: str) -> list[str]:
    return [
        "a@example.com",
        "Ann",
        "2",
        optin,
        "192.0.2.1",
        confirm,
        "192.0.2.1",
        changed,
        "1",
        "e",
        "",
    ]


def unsub_row(optin: str, confirm: str, unsub: str, changed: str) -> list[str]:
    row = mailchimp_row(optin, confirm, changed)
    return [*row[:7], unsub, "Spring news", "", *row[7:]]


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (
            mailchimp_row("2022-01-10 08:00:00", "2022-01-10 08:03:12", "2023-01-01 00:00:00"),
            (SUBSCRIBED, "2022-01-10T08:03:12", "2023-01-01T00:00:00"),
        ),
        (
            mailchimp_row("2022-01-10 08:00:00", "", ""),
            (SUBSCRIBED, "2022-01-10T08:00:00", None),
        ),
        (mailchimp_row("", "", "2023-01-01 00:00:00"), "CONFIRM_TIME or OPTIN_TIME: required"),
        (mailchimp_row("", "2030-01-01 00:00:00", ""), "CONFIRM_TIME: is in the future"),
        (mailchimp_row("", "10/01/2022", ""), "CONFIRM_TIME: not a time"),
    ],
)
def test_mailchimp_subscribed_file(
    row: list[str], expected: tuple[str, str | None, str | None] | str
) -> None:
    expect(one("mailchimp", MAILCHIMP, row), expected)


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (
            unsub_row("", "2020-03-03 10:01:00", "2024-06-01 18:22:10", "2024-06-01 18:22:10"),
            (UNSUBSCRIBED, "2020-03-03T10:01:00", "2024-06-01T18:22:10"),
        ),
        (
            unsub_row("2020-03-03 10:00:00", "", "", "2024-06-02 00:00:00"),
            (UNSUBSCRIBED, "2020-03-03T10:00:00", "2024-06-02T00:00:00"),
        ),
        (unsub_row("", "", "", ""), "UNSUB_TIME or LAST_CHANGED: required"),
    ],
)
def test_mailchimp_unsubscribed_file(
    row: list[str], expected: tuple[str, str | None, str | None] | str
) -> None:
    expect(one("mailchimp", UNSUB, row), expected)


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
