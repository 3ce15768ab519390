"""The id of the HTTP request being handled, so every log line written for it can carry it.

A caller may pass its own `X-Request-Id` to follow a request across systems. An id ends up in
every log line of the request, so one that is not 1-128 visible ASCII characters, or that could
be a contact identifier (an `@`, or a phone number's characters only), is replaced by a fresh
one: a log line must not carry personal data, whatever a client sends.
"""

from __future__ import annotations

import logging
import os
import re
from contextvars import ContextVar
from typing import Any, Final

HEADER: Final = "x-request-id"
MAX_LENGTH: Final = 128
_VISIBLE: Final = re.compile(rf"[\x21-\x7e]{{1,{MAX_LENGTH}}}")
_PHONE_LIKE: Final = re.compile(r"[\d+\-.()/]*\d[\d+\-.()/]*")

#: the request id of the request this task is handling; None outside a request
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)


def usable_request_id(value: str | None) -> bool:
    """Whether a caller's X-Request-Id may be kept (see the module docstring)."""
    if value is None or len(value) > MAX_LENGTH or not _VISIBLE.fullmatch(value) or "@" in value:
        return False
    return not (_PHONE_LIKE.fullmatch(value) and sum(c.isdigit() for c in value) >= 6)


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
