"""The API's PostgreSQL pool, with a bound on every wait: for a connection and for a statement.

asyncpg has no pool-wide acquire timeout: `Pool.acquire(timeout=)` takes one per call, and
every shortcut (`pool.fetch`, `fetchrow`, `fetchval`, `execute`, ...) acquires through
`self.acquire()` with none. So the pool here overrides `acquire` to default to the timeout,
which reaches every acquire in one place. A request that waits past it gets TimeoutError,
answered 503 like the other dependency failures. The statement timeout is PostgreSQL's own
`statement_timeout`, sent with each connection's start-up; a statement cancelled by it raises
QueryCanceledError (an OperatorInterventionError), also answered 503.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import asyncpg
from asyncpg.pool import PoolAcquireContext

#: asyncpg.create_pool's defaults for what the ledger does not choose
_MAX_QUERIES = 50_000
_MAX_INACTIVE_S = 300.0


if TYPE_CHECKING:  # the stubs make Pool generic; at run time it is a plain class
    _Pool = asyncpg.Pool[asyncpg.Record]
else:
    _Pool = asyncpg.Pool


class TimedPool(_Pool):
    """An asyncpg pool whose acquires wait at most `acquire_timeout_s` unless told otherwise."""

    __slots__ = ("_acquire_timeout_s",)

    def __init__(self, *connect_args: Any, acquire_timeout_s: float, **kwargs: Any) -> None:
        super().__init__(*connect_args, **kwargs)
        self._acquire_timeout_s = acquire_timeout_s

    def acquire(self, *, timeout: float | None = None) -> PoolAcquireContext[asyncpg.Record]:
        return super().acquire(timeout=self._acquire_timeout_s if timeout is None else timeout)


async def open_pool(
    dsn: str,
    *,
    min_size: int,
    max_size: int,
    acquire_timeout_ms: int,
    statement_timeout_ms: int,
    reset: Callable[[asyncpg.Connection], Awaitable[None]] | None = None,
) -> TimedPool:
    """A started TimedPool; a statement_timeout of 0 is PostgreSQL's "no limit"."""
    pool = TimedPool(
        dsn,
        acquire_timeout_s=acquire_timeout_ms / 1000,
        min_size=min_size,
        max_size=max_size,
        max_queries=_MAX_QUERIES,
        max_inactive_connection_lifetime=_MAX_INACTIVE_S,
        reset=reset,
        loop=None,
        connection_class=asyncpg.Connection,
        record_class=asyncpg.Record,
        server_settings={"statement_timeout": str(statement_timeout_ms)},
    )
    return await pool
