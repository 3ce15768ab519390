"""A value read from the database at most once at a time and kept a short while, for answers
many concurrent requests ask for: the staleness guard's verdict, /readyz's snapshot.

Callers that find no kept value while a read is under way share that read instead of starting
their own: when the kept value runs out under load, dozens of concurrent requests would
otherwise each read it. A shared read started at most one round trip before the caller. A
value is kept for `keep_s(value)` seconds from the moment its read started (0: not kept, the
next caller reads again), so a kept value is never older than that. A failed read reaches
every caller waiting for it and is not kept.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class SharedRead(Generic[T]):
    def __init__(
        self,
        read: Callable[[], Awaitable[T]],
        keep_s: Callable[[T], float],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.read = read
        self.keep_s = keep_s
        self.clock = clock
        self._kept: T | None = None
        self._kept_until = float("-inf")
        #: the read under way, shared by the callers that wait for it
        self._reading: asyncio.Future[T] | None = None

    async def get(self) -> T:
        """The kept value while it is young enough, else the value of the read under way (or
        of a new one)."""
        if self._kept is not None and self.clock() < self._kept_until:
            return self._kept
        if self._reading is None:
            self._reading = asyncio.ensure_future(self._read())
            self._reading.add_done_callback(self._read_done)
        # shielded: a caller that goes away does not cancel the read the others wait for
        return await asyncio.shield(self._reading)

    async def _read(self) -> T:
        started = self.clock()
        value = await self.read()
        self._kept, self._kept_until = value, started + self.keep_s(value)
        return value

    def _read_done(self, reading: asyncio.Future[T]) -> None:
        self._reading = None
        if not reading.cancelled():
            reading.exception()  # retrieved: each waiter has raised it already
