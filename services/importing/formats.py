"""Reading subscriber exports: each format's columns and statuses mapped onto one vocabulary.

Pure: a text stream and the clock in, one `ImportRow` or `RowProblem` per record out, so a bad
row never stops an import. Names are read past and never kept (the ledger stores no names), and
no reason repeats any part of a field's value: a reason is built from fixed words only (column
names, the accepted statuses, the accepted time forms), so a rejects file holds a line number and
a reason, nothing else.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Final, Protocol

from schemas.event_limits import EARLIEST

SUBSCRIBED: Final = "subscribed"
UNSUBSCRIBED: Final = "unsubscribed"
BLOCKLISTED: Final = "blocklisted"
STATUSES: Final = (SUBSCRIBED, UNSUBSCRIBED, BLOCKLISTED)

#: how far ahead of the ledger's clock a time may be (the exporting system's clock skew)
MAX_CLOCK_SKEW: Final = timedelta(minutes=5)

#: the accepted time forms as patterns, never an example time that a field could hold
TIME_FORMS: Final = "RFC 3339 (YYYY-MM-DDTHH:MM:SSZ or +HH:MM) or YYYY-MM-DD HH:MM:SS (UTC)"


@dataclass(frozen=True, slots=True)
class ImportRow:
    """One usable record: the address as written (trimmed), the status and its times in UTC."""

    line: int
    email: str
    status: str
    opted_in_at: datetime | None
    changed_at: datetime | None
    #: when the source says the person confirmed a double opt-in (subscribed rows only)
    confirmed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class RowProblem:
    """Why the record starting on `line` is not imported; never contains a field's value."""

    line: int
    reason: str


Parsed = ImportRow | RowProblem
EmailCheck = Callable[[str], str]
Row = Mapping[str, str]
#: a row (keys are case-folded column names) and the clock -> (status, opted_in_at, changed_at)
RowMapper = Callable[[Row, datetime], tuple[str, datetime | None, datetime | None]]


class HeaderError(ValueError):
    """The file's header does not fit the chosen format; nothing was read."""


class _CsvReader(Protocol):
    line_num: int

    def __next__(self) -> list[str]: ...


class _Bad(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_EMAIL: Final = re.compile(r"[^\s@]+@[^\s@]+\.[^\s@]+")


def check_email_syntax(text: str) -> str:
    """A syntactic check only; the ledger's own normalisation decides the canonical form."""
    if len(text) > 254 or not _EMAIL.fullmatch(text):
        raise ValueError("not a syntactically valid e-mail address")
    return text


_INSTANT: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    # an offset, optionally followed by a zone name as Go prints it: "+0000 UTC"
    r"(?:\s*([Zz]|[+-]\d{2}:?\d{2})(?:\s+(?:[A-Za-z]{2,5}|[+-]\d{2,4}))?)?"
)


def parse_instant(text: str) -> datetime | None:
    """A time in any form the formats use, as UTC; without an offset it is read as UTC."""
    match = _INSTANT.fullmatch(text.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    offset = timedelta(0)
    if zone and zone not in ("Z", "z"):
        hours, minutes = int(zone[1:3]), int(zone[-2:])
        offset = timedelta(hours=hours, minutes=minutes) * (-1 if zone[0] == "-" else 1)
    try:
        moment = datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second),
            int((fraction or "0")[:6].ljust(6, "0")),
            tzinfo=timezone(offset),
        )
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def _time(row: Row, column: str, now: datetime) -> datetime | None:
    text = (row.get(_key(column)) or "").strip()
    if not text:
        return None
    moment = parse_instant(text)
    if moment is None:
        raise _Bad(f"{column}: not a time; expected {TIME_FORMS}")
    if moment > now + MAX_CLOCK_SKEW:
        raise _Bad(f"{column}: is in the future")
    if moment < EARLIEST:
        raise _Bad(f"{column}: is before {EARLIEST.date()}, the earliest time an event keeps")
    return moment


def _first_time(row: Row, columns: tuple[str, ...], now: datetime) -> datetime | None:
    for column in columns:
        if (moment := _time(row, column, now)) is not None:
            return moment
    return None


def _need(moment: datetime | None, columns: str, status: str) -> datetime:
    if moment is None:
        raise _Bad(f"{columns}: required for status {status}")
    return moment


def _status(text: str | None, column: str, accepted: tuple[str, ...]) -> str:
    """The status as one of `accepted`; a reason lists what is accepted, never what was found
    (a misaligned row puts a name or an address in the status column)."""
    value = (text or "").strip().lower()
    names = ", ".join(accepted)
    if not value:
        raise _Bad(f"{column}: missing; accepted: {names}")
    if value not in accepted:
        raise _Bad(f"{column}: not one of {names}")
    return value


def _generic(row: Row, now: datetime) -> tuple[str, datetime | None, datetime | None]:
    status = _status(row.get("status"), "status", STATUSES)
    opted, changed = _time(row, "opted_in_at", now), _time(row, "changed_at", now)
    if status == SUBSCRIBED:
        _need(opted, "opted_in_at", status)
    else:
        _need(changed, "changed_at", status)
    return status, opted, changed


def _listmonk(row: Row, now: datetime) -> tuple[str, datetime | None, datetime | None]:
    subscriber = _status(row.get("status"), "status", ("enabled", "disabled", "blocklisted"))
    subscription = (row.get("subscription_status") or "").strip() or "confirmed"
    if subscriber != "blocklisted":
        subscription = _status(
            subscription, "subscription_status", ("confirmed", "unconfirmed", "unsubscribed")
        )
    if subscriber == "blocklisted":
        status = BLOCKLISTED
    elif subscription == "unsubscribed":
        status = UNSUBSCRIBED
    elif subscriber == "disabled":
        raise _Bad("status: 'disabled' is an administrator's switch, not a consent decision")
    elif subscription == "unconfirmed":
        raise _Bad("subscription_status: 'unconfirmed' (opt-in not confirmed) is no consent")
    else:
        status = SUBSCRIBED
    opted = _first_time(row, ("subscription_created_at", "created_at"), now)
    changed = _first_time(row, ("subscription_updated_at", "updated_at"), now)
    if status == SUBSCRIBED:
        _need(opted, "created_at", status)
    else:
        _need(changed, "updated_at", status)
    return status, opted, changed


def _mailchimp_subscribed(row: Row, now: datetime) -> tuple[str, datetime, datetime | None]:
    opted = _need(
        _first_time(row, ("CONFIRM_TIME", "OPTIN_TIME"), now),
        "CONFIRM_TIME or OPTIN_TIME",
        SUBSCRIBED,
    )
    return SUBSCRIBED, opted, _time(row, "LAST_CHANGED", now)


def _mailchimp_unsubscribed(row: Row, now: datetime) -> tuple[str, datetime | None, datetime]:
    changed = _first_time(row, ("UNSUB_TIME", "LAST_CHANGED"), now)
    opted = _first_time(row, ("CONFIRM_TIME", "OPTIN_TIME"), now)
    return UNSUBSCRIBED, opted, _need(changed, "UNSUB_TIME or LAST_CHANGED", UNSUBSCRIBED)


def _mailchimp(header: set[str]) -> RowMapper:
    """Mailchimp exports one file per member status; the status columns say which file this is."""
    if "clean_time" in header:
        raise HeaderError(
            "mailchimp: this is the cleaned (bounced) members file; a bounce is a delivery"
            " failure, not a consent decision, so it has nothing to import"
        )
    return _mailchimp_unsubscribed if "unsub_time" in header else _mailchimp_subscribed


def _no_confirmation(_row: Row, _now: datetime) -> datetime | None:
    """A format whose export does not say whether an opt-in was confirmed (listmonk's marks a
    single opt-in subscription `confirmed` too)."""
    return None


def _generic_confirmation(row: Row, now: datetime) -> datetime | None:
    return _time(row, "confirmed_at", now)


def _mailchimp_confirmation(row: Row, now: datetime) -> datetime | None:
    """An opt-in (OPTIN_TIME) then confirmed: Mailchimp fills CONFIRM_TIME alone for members
    an administrator added."""
    opted, confirmed = _time(row, "OPTIN_TIME", now), _time(row, "CONFIRM_TIME", now)
    return confirmed if opted and confirmed and confirmed >= opted else None


@dataclass(frozen=True, slots=True)
class Format:
    name: str
    email_column: str
    required: tuple[str, ...]
    mapper: Callable[[set[str]], RowMapper]
    #: when the source says a subscription's double opt-in was confirmed (None: it does not)
    confirmation: Callable[[Row, datetime], datetime | None] = _no_confirmation


GENERIC: Final = Format(
    "generic",
    "email",
    ("email", "status", "opted_in_at"),
    lambda _header: _generic,
    _generic_confirmation,
)
LISTMONK: Final = Format(
    "listmonk",
    "email",
    ("email", "status", "created_at", "updated_at"),
    lambda _header: _listmonk,
)
MAILCHIMP: Final = Format(
    "mailchimp",
    "Email Address",
    ("Email Address", "OPTIN_TIME", "CONFIRM_TIME"),
    _mailchimp,
    _mailchimp_confirmation,
)
FORMATS: Final = {f.name: f for f in (GENERIC, LISTMONK, MAILCHIMP)}


def _key(column: str) -> str:
    return column.strip().lstrip("\ufeff").strip().casefold()


def read(
    format_name: str,
    stream: Iterable[str],
    *,
    now: datetime,
    check_email: EmailCheck = check_email_syntax,
) -> Iterator[Parsed]:
    """Check the header now (raising HeaderError), then yield one result per non-blank record."""
    fmt = FORMATS[format_name]
    reader = csv.reader(stream)
    try:
        first = next((fields for fields in reader if any(f.strip() for f in fields)), None)
    except csv.Error as exc:
        raise HeaderError(f"{fmt.name}: cannot read the header line ({exc})") from exc
    if first is None:
        raise HeaderError(f"{fmt.name}: the file is empty; expected {', '.join(fmt.required)}")
    header = [_key(name) for name in first]
    missing = [name for name in fmt.required if _key(name) not in header]
    if missing:
        raise HeaderError(
            f"{fmt.name}: the header lacks {', '.join(missing)}"
            f" (expected at least {', '.join(fmt.required)})"
        )
    mapper = fmt.mapper(set(header))
    return _records(reader, header, fmt, mapper, now, check_email)


def read_generic(stream: Iterable[str], *, now: datetime) -> Iterator[Parsed]:
    return read("generic", stream, now=now)


def read_listmonk(stream: Iterable[str], *, now: datetime) -> Iterator[Parsed]:
    return read("listmonk", stream, now=now)


def read_mailchimp(stream: Iterable[str], *, now: datetime) -> Iterator[Parsed]:
    return read("mailchimp", stream, now=now)


def _records(
    reader: _CsvReader,
    header: list[str],
    fmt: Format,
    mapper: RowMapper,
    now: datetime,
    check_email: EmailCheck,
) -> Iterator[Parsed]:
    line_num = reader.line_num
    while True:
        line = line_num + 1  # a record starts on the line after the previous one ended
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield RowProblem(line, _csv_reason(exc))
            fields = []
        if reader.line_num <= line_num:
            return  # no progress: the reader cannot go on
        line_num = reader.line_num
        if any(f.strip() for f in fields):
            yield _record(line, fields, header, fmt, mapper, now, check_email)


def _record(
    line: int,
    fields: list[str],
    header: list[str],
    fmt: Format,
    mapper: RowMapper,
    now: datetime,
    check_email: EmailCheck,
) -> Parsed:
    if any(f.strip() for f in fields[len(header) :]):
        return RowProblem(
            line, f"has {len(fields)} fields but the header names {len(header)}; check the quoting"
        )
    row = dict(zip(header, fields, strict=False))  # a short row reads its missing columns as empty
    try:
        email = _email(row.get(_key(fmt.email_column), ""), fmt.email_column, check_email)
        status, opted_in_at, changed_at = mapper(row, now)
        confirmed_at = fmt.confirmation(row, now) if status == SUBSCRIBED else None
    except _Bad as bad:
        return RowProblem(line, bad.reason)
    return ImportRow(line, email, status, opted_in_at, changed_at, confirmed_at)


def _csv_reason(exc: csv.Error) -> str:
    """The csv module's complaint in fixed words (its own text may carry a number or a quote)."""
    message = str(exc)
    if "field limit" in message:
        return "unreadable CSV: a field is longer than the CSV reader accepts"
    if "new-line character" in message:
        return "unreadable CSV: a line break inside an unquoted field; check the quoting"
    return "unreadable CSV; check the quoting"


_PIECES: Final = re.compile(r"[@.+\s]+")
_WORD_CHAR: Final = re.compile(r"\w")


def _copies(address: str, message: str) -> bool:
    """Whether a checker's message repeats the address, its local part, domain or a label."""
    folded, text = address.casefold(), message.casefold()
    if folded in text:
        return True
    pieces = {folded, *folded.split("@"), *_PIECES.split(folded)}
    for piece in (p for p in pieces if len(p) >= 3):
        # as a whole word: "mail" in "mailbox" is the message's own word, not a copy
        before = r"(?<!\w)" if _WORD_CHAR.match(piece[0]) else ""
        after = r"(?!\w)" if _WORD_CHAR.match(piece[-1]) else ""
        if re.search(before + re.escape(piece) + after, text):
            return True
    return False


def _email(text: str, column: str, check: EmailCheck) -> str:
    address = text.strip()
    if not address:
        raise _Bad(f"{column}: missing")
    try:
        return check(address)
    except ValueError as exc:
        reason = str(exc) or "not an e-mail address"
        if _copies(address, reason):
            reason = "not an e-mail address"  # a reason must not copy (part of) the address
        raise _Bad(f"{column}: {reason}") from None
