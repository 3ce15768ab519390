"""Concurrent point reads that share one query: a round trip per request costs more than the
answer under load, and a lone request still goes at once, never after a timer.

Design: docs/developers/design/reads.md
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

FetchMany = Callable[[Sequence[K]], Awaitable[Mapping[K, V]]]


class Coalescer(Generic[K, V]):
    def __init__(
        self, fetch_many: FetchMany[K, V], *, max_batch: int = 256, max_in_flight: int = 4
    ) -> None:
        if max_batch < 1 or max_in_flight < 1:
            raise ValueError("max_batch and max_in_flight must be at least 1")
        self._fetch_many = fetch_many
        self.max_batch = max_batch
        self.max_in_flight = max_in_flight
        self._waiting: list[tuple[K, asyncio.Future[V]]] = []
        self._in_flight: set[asyncio.Task[None]] = set()
        self._scheduled = False

    @property
    def queued(self) -> int:
        """Keys waiting for a batch to take them."""
        return len(self._waiting)

    async def get(self, key: K) -> V:
        """`fetch_many`'s answer for `key`; KeyError when its mapping leaves the key out, and
        the batch's exception when the batch fails."""
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._waiting.append((key, future))
        self._schedule()
        return await future

    def _schedule(self) -> None:
        if not self._scheduled and self._waiting and len(self._in_flight) < self.max_in_flight:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._send)

    def _send(self) -> None:
        self._scheduled = False
        batch = [(k, f) for k, f in self._waiting[: self.max_batch] if not f.done()]
        del self._waiting[: self.max_batch]
        if batch:
            task = asyncio.get_running_loop().create_task(self._answer(batch))
            self._in_flight.add(task)
            task.add_done_callback(self._finished)
        self._schedule()

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._schedule()

    async def _answer(self, batch: list[tuple[K, asyncio.Future[V]]]) -> None:
        try:
            found = await self._fetch_many(list(dict.fromkeys(k for k, _ in batch)))
        except asyncio.CancelledError:
            for _, future in batch:
                future.cancel()
            raise
        except Exception as exc:  # every waiter gets the batch's failure as its own
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for key, future in batch:
            if future.done():  # its request was cancelled meanwhile
                continue
            if key in found:
                future.set_result(found[key])
            else:
                future.set_exception(KeyError(key))

    async def close(self) -> None:
        """Wait for the batches in flight (their callers are waiting for them)."""
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)
