"""Limits on the request target and the headers, checked before anything parses them.

uvicorn's httptools parser puts no limit on either, and Starlette parses the whole query string
the first time a route looks at it (the access check does, for every route). So the outermost
middleware (services/api/observation.py) answers an oversized request at once: before routing,
before the API key is checked, before Starlette parses anything. The request target is what
414 is about, so a path over the limit is refused like a query string over it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from starlette.types import Scope

from services.http.problems import ProblemError, field_error

#: bytes of the path (as sent, percent-encoded) and of the query string
MAX_PATH: Final = 8 * 1024
MAX_QUERY: Final = 8 * 1024
#: bytes of the header lines as sent: each `name: value` and its line break
MAX_HEADERS: Final = 16 * 1024


def header_bytes(headers: Iterable[tuple[bytes, bytes]]) -> int:
    """The size of the header lines as sent: `name: value\\r\\n` each."""
    return sum(len(name) + len(value) + 4 for name, value in headers)


#: the most characters of a parameter name a 414 repeats (the name is the client's own text)
NAME_SHOWN: Final = 64


def _uri_too_long(
    part: str, size: int, limit: int, errors: list[dict[str, object]] | None = None
) -> ProblemError:
    return ProblemError(
        414,
        "URI too long",
        f"the {part} is {size} bytes; at most {limit} are accepted",
        errors=errors,
        kind="uri-too-long",
    )


def longest_parameter(query: bytes) -> tuple[str, int, int]:
    """(name, bytes, parameters) of a query string's longest parameter, found in one pass
    without decoding it: what a 414 names so the client knows which field to shorten. A name
    that is not short visible ASCII is shown as `(unnamed)`."""
    longest, count = b"", 0
    for part in query.split(b"&"):
        count += 1
        if len(part) > len(longest):
            longest = part
    name = longest.split(b"=", 1)[0]
    shown = name.decode("ascii", "replace") if name.isascii() else ""
    if not shown or len(shown) > NAME_SHOWN or not shown.isprintable() or " " in shown:
        shown = "(unnamed)"
    return shown, len(longest), count


def refusal(scope: Scope) -> ProblemError | None:
    """The 414 or 431 problem an HTTP request's scope earns, or None when it is within the
    limits; linear in the sizes it looks at, and it parses nothing."""
    raw_path = scope.get("raw_path")
    path = len(raw_path) if isinstance(raw_path, bytes) else len(scope.get("path", ""))
    if path > MAX_PATH:
        return _uri_too_long("path", path, MAX_PATH)
    raw_query = scope.get("query_string", b"")
    if len(raw_query) > MAX_QUERY:
        name, size, count = longest_parameter(raw_query)
        why = f"is {size} bytes of a query string of {count} parameters"
        return _uri_too_long(
            "query string", len(raw_query), MAX_QUERY, [field_error(name, why, path=(name,))]
        )
    headers = header_bytes(scope.get("headers", ()))
    if headers > MAX_HEADERS:
        return ProblemError(
            431,
            "Request header fields too large",
            f"the headers are {headers} bytes; at most {MAX_HEADERS} are accepted",
            kind="headers-too-large",
        )
    return None
