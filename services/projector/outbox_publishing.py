"""What the projector's three publishers share (the state feed, the checkpoints, the dead
letters): each drains an outbox the batch transactions fill, over its own database connection
and producer (which MACs every record: services/ledger/record_producer.py), and a broker or database
failure ends only the session, which is started again with back-off, so the projector keeps
applying meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final

import asyncpg
from aiokafka.errors import KafkaError

from services.config import Settings
from services.ledger.publisher import make_producer
from services.ledger.record_producer import RecordProducer, writer_macs

log = logging.getLogger(__name__)

#: failures of a session that are retried: the broker or the database went away for a while
TRANSIENT: Final = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, KafkaError)
FIRST_DELAY_S: Final = 0.2
MAX_DELAY_S: Final = 5.0


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


@contextlib.asynccontextmanager
async def connected(
    settings: Settings,
) -> AsyncIterator[tuple[asyncpg.Connection, RecordProducer]]:
    """A database connection and a started producer (acks=all) that MACs every record under
    the writer keys, both closed on the way out."""
    macs = writer_macs(settings.writer_key_ring())
    conn = await asyncpg.connect(settings.database_url)
    producer = make_producer(
        settings.kafka,
        idempotence=settings.kafka_idempotence,
        timeout_ms=settings.produce_timeout_ms,
    )
    try:
        await producer.start()
        yield conn, RecordProducer(producer, macs)
    finally:
        with contextlib.suppress(Exception):
            await producer.stop()
        with contextlib.suppress(Exception):
            await conn.close(timeout=2)


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
