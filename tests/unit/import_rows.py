"""Builders shared by the import tests: CSV text, reading it at a fixed now, checking results."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from services.importing.formats import ImportRow, Parsed, RowProblem, read

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


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


GENERIC = ["email", "status", "opted_in_at", "changed_at", "name"]


LISTMONK = ["uuid", "email", "name", "attributes", "status", "created_at", "updated_at"]


MAILCHIMP = ["Email Address", "First Name", "MEMBER_RATING", "OPTIN_TIME", "OPTIN_IP",
             "CONFIRM_TIME", "CONFIRM_IP", "LAST_CHANGED", "LEID", "EUID", "TAGS"]  # fmt: skip
