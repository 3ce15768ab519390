"""The dead-letter publisher: puts undecodable event records on `LEDGER_DEAD_LETTER_TOPIC`.

Runs beside the consumer loop in every projector process and drains the outbox the projector
fills in each batch's transaction (projections/dead_letters.py). Letters are claimed with a
lease (several publishers never send the same one at once), produced with acks=all and marked
published only after the acknowledgement. A crash between the two, or a lease that runs out
during a slow send, publishes a letter twice: delivery is at least once, and the headers
(source topic, partition, offset) identify duplicates.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Final

import asyncpg

from projections import dead_letters
from projections.dead_letters import Claim
from projections.runner import NOTIFY_CHANNEL
from schemas.record_mac import DEAD_LETTERS
from services.config import Settings
from services.ledger.record_producer import RecordProducer
from services.projector.outbox_publishing import (
    TRANSIENT,
    PublishingSession,
    Wakeup,
    keep_running,
)

log = logging.getLogger(__name__)

#: how often an idle publisher looks at the outbox without a NOTIFY (released or expired claims)
POLL_S: Final = 1.0


class DeadLetterFeed:
    def __init__(
        self, settings: Settings, *, sessions: PublishingSession, batch_size: int = 100
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.batch_size = batch_size
        self.timeout_s = settings.produce_timeout_ms / 1000
        self.lease_s = max(10.0, 3 * self.timeout_s)
        self.published = 0
        self._wake = Wakeup(POLL_S)

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until `stop`; broker and database failures are retried with back-off."""
        await keep_running("dead-letter feed", self._session, stop, lambda: self.published)

    async def _session(self, stop: asyncio.Event) -> None:
        async with self.sessions() as (conn, producer):
            await conn.add_listener(NOTIFY_CHANNEL, self._wake.notified)
            while not stop.is_set():
                self._wake.clear()
                if not await self.publish_batch(conn, producer):
                    await self._wake.idle(stop)

    async def publish_batch(self, conn: asyncpg.Connection, producer: RecordProducer) -> int:
        """Claim, publish and mark one batch of letters; returns how many."""
        topic = self.settings.topic
        claims = await dead_letters.claim(conn, topic, self.batch_size, self.lease_s)
        if not claims:
            return 0
        try:
            sent = await self._send(producer, claims)
        except Exception:
            with contextlib.suppress(*TRANSIENT):
                await dead_letters.release(conn, topic, claims)
            raise
        await dead_letters.published(conn, topic, sent)
        self.published += len(sent)
        log.warning("published %d dead letter(s) to %s", len(sent), self.settings.dead_letter_topic)
        return len(sent)

    async def _send(
        self, producer: RecordProducer, claims: Sequence[Claim]
    ) -> list[tuple[dead_letters.DeadLetter, int, int]]:
        async def send_all() -> list[tuple[dead_letters.DeadLetter, int, int]]:
            futures = [
                await producer.produce(
                    self.settings.dead_letter_topic,
                    DEAD_LETTERS,
                    key=c.letter.key,
                    value=c.letter.value,
                    headers=dead_letters.headers(c.letter),
                )
                for c in claims
            ]
            acks = await asyncio.gather(*futures)
            return [(c.letter, m.partition, m.offset) for c, m in zip(claims, acks, strict=True)]

        try:
            return await asyncio.wait_for(send_all(), self.timeout_s)
        except TimeoutError as exc:
            raise OSError(f"no acknowledgement within {self.timeout_s}s") from exc
