"""Reading request input strictly: size, content type, JSON, then field by field.

`Fields` collects every problem before answering, so one 422 names all the bad fields; a
field it was not asked for is an unknown field, never silently ignored.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from starlette.requests import Request

from schemas.event_limits import EARLIEST, LATEST, unstorable
from schemas.events import EMAIL_LIKE_RE, subject_id_problem
from services.http import json_body
from services.http.problems import ProblemError, field_error, invalid, unavailable
from services.rules.free_text import contains_phone_number

MAX_BODY: Final = 64 * 1024


async def read_json_object(request: Request, max_bytes: int = MAX_BODY) -> dict[str, Any]:
    """The request body as a JSON object, or a 4xx problem (size, type, syntax); a route
    that takes long lists (the batch check) may allow more than MAX_BODY."""
    ctype = request.headers.get("content-type", "")
    if ctype.split(";")[0].strip().lower() != "application/json":
        raise ProblemError(
            415,
            "Unsupported media type",
            f"content-type {ctype or '(none)'!r} is not accepted; send application/json",
        )
    declared = whole_number(request.headers.get("content-length", ""))
    if declared is not None and declared > max_bytes:
        raise _too_large(max_bytes)
    small = declared is not None and declared <= json_body.ON_LOOP_MAX
    if small or max_bytes <= json_body.ON_LOOP_MAX:
        return _object(await _read_and_decode(request, max_bytes))
    try:  # a large body (or one of unknown length where large ones are taken): a slot first
        json_body.LARGE_BODIES.take()
    except json_body.NoSlotFree as exc:
        raise unavailable(f"{exc}; retry in a second", 1) from None
    try:
        return _object(await _read_and_decode(request, max_bytes))
    finally:
        json_body.LARGE_BODIES.give_back()


async def _read_and_decode(request: Request, max_bytes: int) -> Any:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(max_bytes)
        chunks.append(chunk)
    raw = b"".join(chunks)
    try:
        return await json_body.decode(raw) if raw else {}
    except RecursionError:
        raise _malformed("the body nests arrays and objects too deeply") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _malformed(f"the body is not valid JSON: {exc}") from None
    except json_body.TooManyContainers as exc:
        raise _malformed(str(exc)) from None
    except ValueError:  # int() past its digit limit, or non-ASCII digits
        raise _malformed(
            "the body holds a number that is not JSON or has more than 4300 digits"
        ) from None


def _object(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise invalid([field_error("(body)", "must be a JSON object")], status=400)
    return data


def whole_number(text: str) -> int | None:
    """`text` as a whole number if it is ASCII digits (at most 18 of them past leading zeros),
    else None. str.isdigit alone also takes '²', which int() refuses, and int() refuses more
    than 4300 digits: either would have been a 500."""
    if not (text.isascii() and text.isdigit()):
        return None
    digits = text.lstrip("0") or "0"
    return int(digits) if len(digits) <= 18 else None


def _malformed(detail: str) -> ProblemError:
    return ProblemError(400, "Malformed JSON", detail, kind="malformed-json")


def _too_large(max_bytes: int) -> ProblemError:
    return ProblemError(
        413, "Payload too large", f"the body exceeds {max_bytes} bytes", kind="payload-too-large"
    )


#: RFC 3339 date-time; fromisoformat alone also takes ISO 8601 forms (week dates, no seconds)
RFC3339_RE: Final = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})", re.ASCII | re.IGNORECASE
)


#: longest RFC 3339 text taken (35 characters hold nanoseconds and an offset)
MAX_TIME_TEXT: Final = 64


def parse_time(value: str) -> datetime | None:
    """An RFC 3339 instant with an explicit offset, as UTC; None if it is not one."""
    if len(value) > MAX_TIME_TEXT:
        return None
    text = value.strip()
    if not RFC3339_RE.fullmatch(text):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("z", "Z"))
        # year 1 east of UTC, or 9999 west of it, is past the calendar's end in UTC
        return moment.astimezone(UTC) if moment.tzinfo is not None else None
    except (ValueError, OverflowError):
        return None


def _phone_problem(text: str) -> str | None:
    """Why free text cannot carry `text` for holding a phone number (services/rules/free_text.py
    says what counts as one), or None."""
    if contains_phone_number(text):
        return (
            "must not contain a phone number (7 or more digits written with spaces or"
            " + ( ) - . /); dates, times and ids such as INC-20260131-0042 are accepted:"
            " events carry no personal data"
        )
    return None


def query_fields(request: Request) -> Fields:
    """The query string as Fields; a parameter given twice is refused, never silently merged
    (which of two `email=` values to answer for is not ours to guess)."""
    items = request.query_params.multi_items()
    counts = Counter(name for name, _ in items)
    repeated = sorted(name for name, count in counts.items() if count > 1)
    if repeated:
        raise invalid([field_error(name, "is given more than once") for name in repeated])
    return Fields(dict(items))


def check_subject_id(value: str, field: str = "subject_id") -> str:
    problem = subject_id_problem(value)
    if problem:
        raise invalid([field_error(field, problem)], status=422)
    return value


class Fields:
    """Takes typed values out of a JSON object (or query string), recording each problem."""

    def __init__(self, data: Mapping[str, Any], path: tuple[str, ...] = ()) -> None:
        self.data = data
        self.path = path
        self.taken: set[str] = set()
        self.errors: list[dict[str, Any]] = []

    def error(self, name: str, detail: str, accepted: Any = None) -> None:
        keys = (*self.path, name)
        self.errors.append(field_error(".".join(keys), detail, accepted, keys))

    def raw(self, name: str, required: bool = False) -> Any:
        self.taken.add(name)
        value = self.data.get(name)
        if value is None and required:
            self.error(name, "is required")
        return value

    def text(
        self, name: str, *, required: bool = False, max_len: int = 200, free_text: bool = False
    ) -> str | None:
        value = self.raw(name, required)
        if value is None:
            return None
        if not isinstance(value, str):
            self.error(name, f"must be a string, not {type(value).__name__}")
            return None
        if not value.strip() or len(value) > max_len:
            self.error(name, f"must be 1-{max_len} characters")
            return None
        if problem := unstorable(value):
            self.error(name, problem)
            return None
        if free_text and EMAIL_LIKE_RE.search(value):
            self.error(name, "must not contain an e-mail address: events carry no personal data")
            return None
        if free_text and (problem := _phone_problem(value)):
            self.error(name, problem)
            return None
        return value

    def choice(
        self,
        name: str,
        choices: Iterable[str],
        *,
        required: bool = False,
        default: str | None = None,
    ) -> str | None:
        options = list(choices)
        value = self.raw(name, required)
        if value is None:
            return default
        if not isinstance(value, str) or value not in options:
            self.error(name, f"{value!r} is not accepted", options)
            return None
        return value

    def choices(self, name: str, choices: Iterable[str]) -> list[str]:
        options = list(choices)
        value = self.raw(name)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.error(name, "must be a list of strings", options)
            return []
        wrong = [v for v in value if v not in options]
        if wrong:
            self.error(name, f"{', '.join(map(repr, wrong))} not accepted", options)
            return []
        return list(dict.fromkeys(value))

    def subject_id(self, name: str = "subject_id") -> str | None:
        value = self.raw(name, required=True)
        if value is None:
            return None
        problem = subject_id_problem(value) if isinstance(value, str) else "must be a string"
        if problem:
            self.error(name, problem)
            return None
        return str(value)

    def instant(self, name: str, *, required: bool = False) -> datetime | None:
        value = self.raw(name, required)
        if value is None:
            return None
        moment = parse_time(value) if isinstance(value, str) else None
        if moment is None:
            self.error(name, "must be an RFC 3339 date-time with offset, e.g. 2026-01-31T12:00:00Z")
        elif not EARLIEST <= moment < LATEST:
            self.error(name, f"must lie from {EARLIEST.date()} up to {LATEST.date()}")
            return None
        return moment

    def flag(self, name: str) -> bool:
        value = self.raw(name)
        if value is None:
            return False
        if not isinstance(value, bool):
            self.error(name, "must be true or false")
            return False
        return value

    def object(self, name: str) -> Fields | None:
        value = self.raw(name)
        if value is None:
            return None
        if not isinstance(value, dict):
            self.error(name, "must be an object")
            return None
        return Fields(value, (*self.path, name))

    def merge(self, inner: Fields | None) -> None:
        """Fold a nested object's problems (and its unknown fields) into this one."""
        if inner is not None:
            inner.check_unknown()
            self.errors.extend(inner.errors)

    def check_unknown(self) -> None:
        for name in self.data:
            if name not in self.taken:
                self.error(name, "is not a known field", sorted(self.taken))

    def finish(self, status: int = 422) -> None:
        """Raise one problem naming every bad field, unknown fields included."""
        self.check_unknown()
        if self.errors:
            raise invalid(self.errors, status)
