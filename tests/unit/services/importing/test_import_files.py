"""Reading whole export files: bad headers, file layout, address privacy, samples, any input."""

from __future__ import annotations

import ast
import io
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.identity import identities
from services.identity.identities import normalise_email
from services.importing import formats
from services.importing.formats import (
    BLOCKLISTED,
    SUBSCRIBED,
    UNSUBSCRIBED,
    HeaderError,
    ImportRow,
    RowProblem,
    check_email_syntax,
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


def fixed_words(*modules: ModuleType) -> frozenset[str]:
    """Every word of the modules' string literals (docstrings aside): the only words a reason
    may be made of. `formats` writes the reasons; `identities` is the address checker the
    command uses, whose messages a reason may carry."""
    words: set[str] = set()
    for module in modules:
        assert module.__file__ is not None
        tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
        docstrings = {
            id(node.value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in docstrings
            ):
                words.update(re.findall(r"\w+", node.value.casefold()))
    return frozenset(words)


VOCABULARY = fixed_words(formats, identities)


def repeats(value: str, reason: str) -> bool:
    """Whether `reason` holds `value` (3+ characters, as a whole word or phrase) and the value is
    not itself made of the reason's fixed vocabulary (a status named in the status column, say).
    A value inside one of the reason's words ("tat" in "status") is not a copy of it."""
    needle, text = value.strip().casefold(), reason.casefold()
    if len(needle) < 3 or all(word in VOCABULARY for word in re.findall(r"\w+", needle)):
        return False
    before = r"(?<!\w)" if re.match(r"\w", needle[0]) else ""
    after = r"(?!\w)" if re.match(r"\w", needle[-1]) else ""
    return re.search(before + re.escape(needle) + after, text) is not None


def test_the_vocabulary_check_finds_a_repeated_name_and_allows_fixed_words() -> None:
    assert repeats("Zed Lovelace", "status: 'zed lovelace' is not accepted")
    assert repeats(" 2024-01-02 03:04 ", "opted_in_at: 2024-01-02 03:04 is not a time")
    assert not repeats("Subscribed", "opted_in_at: required for status subscribed")
    assert not repeats("tat", "status: not one of subscribed, unsubscribed, blocklisted")
    assert not repeats("Zed", "status: not one of subscribed, unsubscribed, blocklisted")


#: every header a reason depends on: each format, listmonk's list status, both Mailchimp files
REASON_HEADERS = [
    ("generic", GENERIC),
    ("listmonk", LISTMONK),
    ("listmonk", [*LISTMONK, "subscription_status", "subscription_created_at"]),
    ("mailchimp", MAILCHIMP),
    ("mailchimp", [*MAILCHIMP, "UNSUB_TIME"]),
]
MOMENTS = st.datetimes(min_value=datetime(1999, 1, 1), max_value=datetime(2031, 1, 1))
TIME_TEXT = st.one_of(
    st.builds(
        datetime.strftime, MOMENTS, st.sampled_from(["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%SZ"])
    ),
    MOMENTS.map(lambda moment: f"{moment:%Y-%m-%d %H:%M:%S.%f} +0000 UTC"),
    st.from_regex(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}(:[0-9]{2})?", fullmatch=True),
)
#: random text: any text, names and words, address-like text, time-like text, the formats' words
CELL = st.one_of(
    st.text(max_size=30),
    st.from_regex(r"[A-Za-z][A-Za-z '_-]{2,24}", fullmatch=True),
    st.from_regex(r"[A-Za-z0-9._+-]{1,12}@[A-Za-z0-9.-]{1,16}", fullmatch=True),
    TIME_TEXT,
    st.sampled_from(["", "Zed Lovelace", *formats.STATUSES, "enabled", "disabled", "unconfirmed"]),
)
ADDRESS = st.from_regex(
    r"[a-z][a-z0-9._+-]{0,10}@[a-z][a-z0-9-]{0,10}\.(com|org|de)", fullmatch=True
)
#: a person's name, as a misaligned row puts it in the status column
NAME = st.from_regex(r"[A-Z][a-z]{1,9}( [A-Z][a-z'-]{1,12})?", fullmatch=True)
STATUS_WORD = st.sampled_from(
    [*formats.STATUSES, "enabled", "disabled", "confirmed", "unconfirmed", ""]
)


def mostly(kind: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """`kind` three times in four, else any cell."""
    return st.integers(0, 3).flatmap(lambda k: kind if k else CELL)


def column_text(name: str) -> st.SearchStrategy[str]:
    """Random text for every column, mostly of the column's kind, so that rows get past the
    address and the status to the later checks."""
    name = name.casefold()
    if name in ("email", "email address"):
        return mostly(ADDRESS)
    if name.endswith("status"):
        return mostly(st.one_of(STATUS_WORD, NAME))
    if name.endswith(("_at", "_time", "last_changed")):
        return mostly(TIME_TEXT)
    return CELL


@st.composite
def export_rows(draw: st.DrawFn, header: list[str]) -> list[str]:
    """A row of random text, possibly misaligned (two cells swapped, a cell missing or one too
    many, so that a name or an address lands in the status or a time column) or cut short."""
    row = [draw(column_text(name)) for name in header]
    at, other = draw(st.integers(0, len(row))), draw(st.integers(0, len(row) - 1))
    shift = draw(st.sampled_from(["none", "swap", "drop", "insert", "cut"]))
    if shift == "swap" and at < len(row):
        row[at], row[other] = row[other], row[at]
    elif shift == "drop" and at < len(row):
        del row[at]
    elif shift == "insert":
        row.insert(at, draw(st.one_of(NAME, CELL)))
    elif shift == "cut":
        row = row[:at]
    return row


def parts(value: str) -> set[str]:
    """The value, its words, an address's local part and domain, and the domain's labels."""
    return {value, *re.split(r"[\s@]+", value), *re.split(r"[\s@.]+", value)}


def echoing_checker(text: str) -> str:
    """A checker whose messages repeat parts of the address (its domain, its local part)."""
    local, _, domain = text.partition("@")
    if not domain.endswith(".com"):
        raise ValueError(f"the domain {domain.upper()} is not accepted")
    if len(local) > 3:
        raise ValueError(f"{local}: too long a mailbox name")
    return text


@given(
    st.sampled_from(REASON_HEADERS).flatmap(
        lambda chosen: st.tuples(
            st.just(chosen), st.lists(export_rows(chosen[1]), min_size=1, max_size=6)
        )
    ),
    st.sampled_from([check_email_syntax, normalise_email, echoing_checker]),
)
def test_no_reason_repeats_a_fields_value(
    case: tuple[tuple[str, list[str]], list[list[str]]], check: Callable[[str], str]
) -> None:
    """Random text in every column, names and statuses included: no reason holds a value of 3 or
    more characters (nor a word of it, nor part of an address) that is not one of the fixed
    words (see `repeats`)."""
    (format_name, header), rows = case
    text = csv_text(header, rows)
    results = read(format_name, io.StringIO(text, newline=""), now=NOW, check_email=check)
    values = {part for row in rows for value in row for part in parts(value)}
    for result in results:
        if isinstance(result, RowProblem):
            leaked = [value for value in values if repeats(value, result.reason)]
            assert not leaked, (result.reason, leaked)
