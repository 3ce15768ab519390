"""JSON request bodies decoded at a bounded cost to the event loop: large ones in a worker
thread, a few at a time, so one 16 MiB batch check cannot stall every other request.

Design: docs/developers/design/http-layer.md
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from json.scanner import py_make_scanner  # type: ignore[attr-defined]
from typing import Any, Final

#: bodies up to this size are decoded on the event loop
ON_LOOP_MAX: Final = 64 * 1024
#: arrays and objects a body over ON_LOOP_MAX may hold
MAX_CONTAINERS: Final = 1000


#: large bodies one API process reads and decodes at once
LARGE_AT_ONCE: Final = 2


class NoSlotFree(Exception):
    """LARGE_AT_ONCE large bodies are being read already: answer 503 and let the client retry."""


class LargeBodySlots:
    """Who may read and decode a large body now: at most `size` at once, the rest refused at
    once rather than queued (a queue of 16 MiB bodies is memory the process does not have).
    One event loop's bookkeeping: no lock is needed between an await and the next."""

    def __init__(self, size: int = LARGE_AT_ONCE) -> None:
        self.size = size
        self.taken = 0

    def take(self) -> None:
        if self.taken >= self.size:
            raise NoSlotFree(f"{self.size} large request bodies are being read already")
        self.taken += 1

    def give_back(self) -> None:
        self.taken -= 1


#: the process's slots (every app of a process shares its one event loop's bookkeeping)
LARGE_BODIES: Final = LargeBodySlots()


class TooManyContainers(ValueError):
    """A large body holds more arrays and objects than MAX_CONTAINERS."""


class _CountingDecoder(json.JSONDecoder):
    """json.JSONDecoder on the pure-Python scanner, counting the arrays and objects it makes."""

    # set by json.JSONDecoder.__init__, read by the scanner; typeshed does not declare them
    parse_object: Callable[..., Any]
    parse_array: Callable[..., Any]
    scan_once: Callable[[str, int], tuple[Any, int]]

    def __init__(self) -> None:
        super().__init__()
        self.containers = 0
        plain_object, plain_array = self.parse_object, self.parse_array

        def parse_object(*args: Any) -> Any:
            self._count()
            return plain_object(*args)

        def parse_array(*args: Any) -> Any:
            self._count()
            return plain_array(*args)

        self.parse_object, self.parse_array = parse_object, parse_array
        self.parse_int, self.parse_float = _ascii_number(int), _ascii_number(float)
        self.scan_once = py_make_scanner(self)

    def _count(self) -> None:
        self.containers += 1
        if self.containers > MAX_CONTAINERS:
            raise TooManyContainers(
                f"a body over {ON_LOOP_MAX} bytes may hold at most {MAX_CONTAINERS} arrays and"
                " objects"
            )


def _ascii_number(convert: Callable[[str], Any]) -> Callable[[str], Any]:
    """The Python scanner's number pattern takes any Unicode digit after the first (`1٣`),
    which JSON and the C decoder do not."""

    def number(text: str) -> Any:
        if not text.isascii():
            raise ValueError(f"{text!r} is not a JSON number")
        return convert(text)

    return number


def decode_large(raw: bytes) -> Any:
    """`json.loads(raw)` as the pure-Python scanner does it, counting containers (for a
    worker thread); raises what json.loads raises, or TooManyContainers."""
    text = raw.decode(json.detect_encoding(raw), "surrogatepass")
    return _CountingDecoder().decode(text)


async def decode(raw: bytes) -> Any:
    """The body's JSON value: decoded on the loop when small, in a worker thread when large.
    Raises ValueError (syntax, encoding, a number over int()'s digit limit, too many
    containers) or RecursionError (nesting deeper than the interpreter's recursion limit)."""
    if len(raw) <= ON_LOOP_MAX:
        return json.loads(raw)
    return await asyncio.to_thread(decode_large, raw)
