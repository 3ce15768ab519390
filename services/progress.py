"""How far the projection has got, so queries with min_token can wait for their writes.

The projector NOTIFYs after every batch; a listener connection wakes the waiters, and each
waiter also re-reads the stored offsets on a short interval in case a notification is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
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

    async def start(self, database_url: str) -> None:
        with contextlib.suppress(OSError, asyncpg.PostgresError):
            self._listener = await asyncpg.connect(database_url)
            await self._listener.add_listener(NOTIFY_CHANNEL, self._notified)

    async def close(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                await self._listener.close(timeout=2)

    def _notified(self, *_: Any) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def refresh(self) -> dict[int, int]:
        self.positions = await offsets.load(self.pool, self.topic)
        return self.positions

    async def wait_for(self, partition: int, position: int, timeout_s: float) -> bool:
        """True once the projection has applied everything before `position` on `partition`."""
        if self.positions.get(partition, 0) >= position:
            return True  # stored offsets only move forward: a position seen once stays reached
        deadline = time.monotonic() + timeout_s
        while True:
            if (await self.refresh()).get(partition, 0) >= position:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, _RECHECK_S))
