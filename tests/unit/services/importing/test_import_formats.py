"""Reading subscriber exports row by row: each format's columns, status mapping and bad rows."""

from __future__ import annotations

import pytest

from services.importing.formats import (
    BLOCKLISTED,
    SUBSCRIBED,
    UNSUBSCRIBED,
    ImportRow,
    parse_instant,
)
from tests.unit.import_rows import GENERIC, LISTMONK, MAILCHIMP, at, expect, one

P = pytest.param


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
        (
            ["a@example.com", "active", "2020-01-01 00:00:00", "", ""],
            "status: not one of subscribed, unsubscribed, blocklisted",
        ),
        # a misaligned row: the name lands in the status column and must not be repeated
        (
            ["zed@example.com", "Zed Lovelace", "2020-01-01 00:00:00", "", ""],
            "status: not one of subscribed, unsubscribed, blocklisted",
        ),
        (["a@example.com", "", "2020-01-01 00:00:00", "", ""], "status: missing"),
        (["a@example.com", "b@example.com", "2020-01-01 00:00:00", "", ""], "status: not one of"),
        (["a@example.com", "subscribed", "yesterday", "", ""], "opted_in_at: not a time"),
        (
            ["a@example.com", "subscribed", "2025-06-01 12:04:00", "", ""],
            (SUBSCRIBED, "2025-06-01T12:04:00", None),
        ),
        (["a@example.com", "subscribed", "2025-06-01 12:06:00", "", ""], "is in the future"),
        (
            ["a@example.com", "subscribed", "1899-12-31 23:59:59", "", ""],
            "opted_in_at: is before 1900-01-01",
        ),
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
        (listmonk_row("deleted"), "status: not one of enabled, disabled, blocklisted"),
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
        (
            "enabled",
            "pending",
            "subscription_status: not one of confirmed, unconfirmed, unsubscribed",
        ),
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


@pytest.mark.parametrize(
    ("format_name", "header", "row", "confirmed"),
    [
        P("mailchimp", MAILCHIMP,
          mailchimp_row("2022-01-10 08:00:00", "2022-01-10 08:03:12", ""), "2022-01-10T08:03:12",
          id="mailchimp-confirm-time"),
        P("mailchimp", MAILCHIMP, mailchimp_row("2022-01-10 08:00:00", "", ""), None,
          id="mailchimp-single-opt-in"),
        P("mailchimp", UNSUB, unsub_row("", "2020-03-03 10:01:00", "2024-06-01 18:22:10", ""),
          None, id="mailchimp-unsubscribed-keeps-no-confirmation"),
        P("generic", [*GENERIC, "confirmed_at"],
          ["a@example.com", "subscribed", "2024-01-01 00:00:00", "", "", "2024-01-01 00:05:00"],
          "2024-01-01T00:05:00", id="generic-confirmed-at"),
        P("generic", GENERIC, ["a@example.com", "subscribed", "2024-01-01 00:00:00", "", ""],
          None, id="generic-without-the-column"),
        P("listmonk", LISTMONK, listmonk_row("enabled"), None,
          id="listmonk-says-nothing-of-double-opt-in"),
    ],
)  # fmt: skip
def test_what_a_source_says_it_confirmed(
    format_name: str, header: list[str], row: list[str], confirmed: str | None
) -> None:
    result = one(format_name, header, row)
    assert isinstance(result, ImportRow), result
    assert result.confirmed_at == (at(confirmed) if confirmed else None)


def test_a_bad_confirmation_time_refuses_the_row() -> None:
    row = ["a@example.com", "subscribed", "2024-01-01 00:00:00", "", "", "soon"]
    expect(one("generic", [*GENERIC, "confirmed_at"], row), "confirmed_at: not a time")
