"""How far the projection has got, so queries with min_token can wait for their writes.

The projector NOTIFYs after every batch. The listener re-reads the stored offsets once per
notification, for every waiter at once (a notification that arrives during a read queues one
more read, since that read may have started before the batch committed); waiters only look at
the positions in memory. The positions are read once when listening starts, so a position
committed before a waiter arrives is either in memory already or announced by a notification
still to come. Without a working listener, each waiter reads the offsets itself, and every
waiter re-reads them on a short interval in case a notification is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from projections import offsets
from projections.runner import NOTIFY_CHANNEL

_RECHECK_S = 0.25


class ProjectionProgress:
    def __init__(self, pool: asyncpg.Pool, topic: str) -> None:
        self.pool = pool
        self.topic = topic
        self.positions: dict[int, int] = {}
        self._changed = asyncio.Event()
        self._listener: asyncpg.Connection | None = None
        self._reading: asyncio.Future[None] | None = None
        self._read_again = False

    async def start(self, connect: Callable[[], Awaitable[asyncpg.Connection]]) -> None:
        """Listen on a connection of its own, opened by `connect`; without one, waiters read
        the offsets themselves."""
        with contextlib.suppress(OSError, asyncpg.PostgresError):
            self._listener = await connect()
            await self._listener.add_listener(NOTIFY_CHANNEL, self._notified)
            await self.refresh()  # after listening: no batch falls between the two

    async def close(self) -> None:
        if self._reading is not None:
            self._read_again = False
            self._reading.cancel()
        if self._listener is not None:
            with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                await self._listener.close(timeout=2)

    @property
    def listening(self) -> bool:
        return self._listener is not None and not self._listener.is_closed()

    def _notified(self, *_: Any) -> None:
        self._read_soon()

    def _read_soon(self) -> None:
        """Start a read of the stored offsets, or queue one after the read in flight."""
        if self._reading is not None:
            self._read_again = True
            return
        self._read_again = False
        self._reading = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        try:
            await self.refresh()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            pass  # waiters re-check on their interval
        finally:
            self._reading = None
            if self._read_again:
                self._read_soon()

    async def refresh(self) -> dict[int, int]:
        """Read the stored offsets now and wake the waiters."""
        loaded = await offsets.load(self.pool, self.topic)
        # stored offsets only move forward: an older read finishing late changes nothing
        for partition, position in loaded.items():
            if position > self.positions.get(partition, 0):
                self.positions[partition] = position
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
        return self.positions

    async def wait_for(self, partition: int, position: int, timeout_s: float) -> bool:
        """True once the projection has applied everything before `position` on `partition`."""
        if self.positions.get(partition, 0) >= position:
            return True  # stored offsets only move forward: a position seen once stays reached
        deadline = time.monotonic() + timeout_s
        if not self.listening:
            self._read_soon()
        while True:
            changed = self._changed
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            try:
                await asyncio.wait_for(changed.wait(), min(remaining, _RECHECK_S))
            except TimeoutError:
                self._read_soon()
            if self.positions.get(partition, 0) >= position:
                return True
