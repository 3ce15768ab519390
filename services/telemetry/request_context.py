"""The id of the HTTP request being handled, so every log line written for it can carry it.

A caller may pass its own `X-Request-Id` to follow a request across systems. An id ends up in
every log line of the request, so one that is not 1-128 visible ASCII characters, or that could
be a contact identifier (an `@`, or a phone number's characters only), is replaced by a fresh
one: a log line must not carry personal data, whatever a client sends. `Idempotency-Key` is
held to the same rule (`opaque_id_problem`), and refused rather than replaced.
"""

from __future__ import annotations

import logging
import os
import re
from contextvars import ContextVar
from typing import Any, Final

HEADER: Final = "x-request-id"
MAX_LENGTH: Final = 128
_VISIBLE: Final = re.compile(r"[\x21-\x7e]+")
#: a phone number's characters only; with PHONE_DIGITS digits or more the id could be one
_PHONE_CHARACTERS: Final = re.compile(r"[0-9+\-.()/]+")
PHONE_DIGITS: Final = 6

#: the request id of the request this task is handling; None outside a request
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)


def opaque_id_problem(value: str, max_length: int) -> str | None:
    """Why a client's id cannot be kept or stored (it could be an e-mail address or a phone
    number, or is not 1 to `max_length` visible ASCII characters), or None. The length is
    checked first and each pattern is one pass without nested repetition: linear."""
    if not 1 <= len(value) <= max_length or not _VISIBLE.fullmatch(value):
        return f"must be 1-{max_length} visible ASCII characters"
    if "@" in value:
        return "must not contain '@': it could be an e-mail address; use an opaque id"
    if _PHONE_CHARACTERS.fullmatch(value) and sum(c.isdigit() for c in value) >= PHONE_DIGITS:
        return "must not be a phone number (only digits and + - . ( ) /); use an opaque id"
    return None


def usable_request_id(value: str | None) -> bool:
    """Whether a caller's X-Request-Id may be kept (see the module docstring)."""
    return value is not None and opaque_id_problem(value, MAX_LENGTH) is None


def new_request_id() -> str:
    """32 random hex digits (uuid4's form without its version bits, at a tenth of its cost:
    every request without an X-Request-Id gets one)."""
    return os.urandom(16).hex()


def request_id_for(header: str | None) -> str:
    """The caller's id when usable, else a fresh one."""
    return header if header is not None and usable_request_id(header) else new_request_id()


def current_request_id() -> str | None:
    return REQUEST_ID.get()


def install_record_factory() -> None:
    """Give every LogRecord a `request_id` attribute (None outside a request), for the
    formatters and for any handler that reads records; installing twice is harmless."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "adds_request_id", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.request_id = REQUEST_ID.get()
        return record

    factory.adds_request_id = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
