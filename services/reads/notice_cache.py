"""The published privacy notices, kept in memory by each API process.

Notices change rarely, and every decision for a subject holding a grant needs all of them, so
reading them per decision doubled its round trips. The rule that keeps the cache correct: a
decision never uses notices older than the projection snapshot it reads. The notices table only
grows (the first publication of a version wins; a rebuild switches to a table replayed at least
as far), so the number of rows is a version number. The subject's state is read together with
that count in one statement (projections/subject_state.py); when the cache holds fewer notices
than that snapshot had applied, the cache is read again before deciding. A cache that holds
*more* (a notice applied after the snapshot) is used as it is: reading the notices after the
state did the same. A reload every REFRESH_S guards against a table that shrank (a restored
database).
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
