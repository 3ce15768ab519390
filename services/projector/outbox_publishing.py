"""What the projector's three publishers share (the state feed, the checkpoints, the dead
letters): each drains an outbox the batch transactions fill, over a session of its own (a
database connection and a producer that MACs every record: services/ledger/record_producer.py),
and a broker or database failure ends only the session, which is started again with back-off,
so the projector keeps applying meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final

import asyncpg
from aiokafka.errors import KafkaError

from services.ledger.record_producer import RecordProducer

log = logging.getLogger(__name__)

#: failures of a session that are retried: the broker or the database went away for a while
TRANSIENT: Final = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, KafkaError)
FIRST_DELAY_S: Final = 0.2
MAX_DELAY_S: Final = 5.0

#: opens a publisher's session: a database connection and a started producer that MACs every
#: record, both closed on the way out (services/bootstrap.py publishing_session)
PublishingSession = Callable[
    [], contextlib.AbstractAsyncContextManager[tuple[asyncpg.Connection, RecordProducer]]
]


async def keep_running(
    name: str,
    session: Callable[[asyncio.Event], Awaitable[None]],
    stop: asyncio.Event,
    progress: Callable[[], int] = lambda: 0,
) -> None:
    """Run `session` until `stop`, starting it again after a failure; the pause doubles up to
    MAX_DELAY_S and starts over once a session has made `progress`."""
    delay = FIRST_DELAY_S
    while not stop.is_set():
        before = progress()
        try:
            await session(stop)
        except TRANSIENT as exc:
            log.warning("%s failed (%s: %s); retrying", name, type(exc).__name__, exc)
        except Exception:
            # a bug: keep the projector running, say so loudly, retry after a pause
            log.exception("%s failed unexpectedly; retrying", name)
        if progress() > before:
            delay = FIRST_DELAY_S
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
        delay = min(delay * 2, MAX_DELAY_S)


class Wakeup:
    """Woken by the projector's NOTIFY after each batch; an idle publisher also looks every
    `poll_s` (for released or expired claims)."""

    def __init__(self, poll_s: float) -> None:
        self.poll_s = poll_s
        self._event = asyncio.Event()

    def notified(self, *_: Any) -> None:
        self._event.set()

    def clear(self) -> None:
        self._event.clear()

    async def idle(self, stop: asyncio.Event) -> None:
        """Until woken, stopped, or `poll_s` has passed."""
        waits = {asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._event.wait())}
        try:
            await asyncio.wait(waits, timeout=self.poll_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()
