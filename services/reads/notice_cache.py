"""The published privacy notices, kept in memory by each API process, never older than the
projection snapshot a decision reads.

Design: docs/developers/design/notices.md
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Final

import asyncpg

from projections import notices
from projections.outdating import NO_NOTICES, Notices

REFRESH_S: Final = 60.0


class NoticeCache:
    def __init__(self, pool: asyncpg.Pool, clock: Callable[[], float] = time.monotonic) -> None:
        self.pool = pool
        self.clock = clock
        self._notices: Notices = NO_NOTICES
        self._count = -1
        self._loaded_at = -REFRESH_S
        self._lock = asyncio.Lock()

    async def covering(self, applied: int) -> Notices:
        """The published notices, including at least the first `applied` ones (the count a
        decision's snapshot saw)."""
        if self._count >= applied and self.clock() - self._loaded_at < REFRESH_S:
            return self._notices
        async with self._lock:  # one reload for every request that finds the cache behind
            if self._count < applied or self.clock() - self._loaded_at >= REFRESH_S:
                await self._reload()
        return self._notices

    async def _reload(self) -> None:
        started = self.clock()
        found = await notices.all_notices(self.pool)
        self._notices, self._count, self._loaded_at = Notices.of(found), len(found), started
