"""The checkpointer: cuts each partition's running digest into a checkpoint and publishes it on
the checkpoint topic (`LEDGER_CHECKPOINTS_TOPIC`), keyed by `<topic>:<partition>`.

Runs beside the consumer loop in every projector process. The digests themselves are kept by
the projector in each batch's transaction (projections/log_digest.py); this task only cuts a
partition's open range once it has been open for `LEDGER_CHECKPOINT_INTERVAL_S`, and every
open range when the projector stops cleanly, then publishes the queued checkpoints. Cutting
and queueing are one transaction, and a queued checkpoint is deleted only in the transaction
that saw the broker acknowledge it, so a crash can repeat a checkpoint record but never lose
or change one. Several projector processes share the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Final

import asyncpg

from projections import log_digest
from projections.log_digest import Cut
from schemas.checkpoint_codec import LogCheckpoint, checkpoint_headers, encode_checkpoint
from schemas.record_mac import CHECKPOINTS
from services.config import Settings
from services.ledger.record_producer import RecordProducer
from services.projector.outbox_publishing import TRANSIENT, PublishingSession, keep_running

log = logging.getLogger(__name__)

#: how long the final cut and publish on a clean stop may take
FINAL_TIMEOUT_S: Final = 15.0


def checkpoint_of(cut: Cut) -> LogCheckpoint:
    return LogCheckpoint(
        topic=cut.topic,
        partition=cut.partition,
        from_offset=cut.from_offset,
        to_offset=cut.to_offset,
        records=cut.record_count,
        previous_digest=cut.previous_digest.hex(),
        digest=cut.digest.hex(),
        created_at=cut.created_at,
    )


class Checkpointer:
    def __init__(
        self, settings: Settings, *, sessions: PublishingSession, batch_size: int = 200
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.batch_size = batch_size
        self.interval_s = float(settings.checkpoint_interval_s)
        #: how often the task looks for due ranges: a checkpoint is at most this late
        self.tick_s = max(0.25, min(5.0, self.interval_s / 4))
        self.timeout_s = settings.produce_timeout_ms / 1000
        self.published = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Cut and publish until `stop`, retrying failures with back-off; then cut every open
        range and publish it. Set `stop` only after the projector has stopped, so the final
        checkpoints cover everything it applied."""
        await keep_running("checkpointer", self._session, stop, lambda: self.published)
        try:
            await asyncio.wait_for(self.final(), FINAL_TIMEOUT_S)
        except (*TRANSIENT, TimeoutError) as exc:
            log.warning(
                "final checkpoints not published (%s); the next projector cuts and publishes them",
                type(exc).__name__,
            )

    async def _session(self, stop: asyncio.Event) -> None:
        async with self.sessions() as (conn, producer):
            while not stop.is_set():
                await self.step(conn, producer, every=False)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.tick_s)

    async def final(self) -> None:
        async with self.sessions() as (conn, producer):
            await self.step(conn, producer, every=True)

    async def step(self, conn: asyncpg.Connection, producer: RecordProducer, *, every: bool) -> int:
        """Cut the due (or, with `every`, all non-empty) ranges, then publish everything queued;
        returns how many checkpoints were published."""
        cut = await log_digest.cut(conn, self.settings.topic, self.interval_s, every=every)
        if cut:
            log.debug("cut %d checkpoints", cut)
        total = 0
        while sent := await self.publish_batch(conn, producer):
            total += sent
        return total

    async def publish_batch(self, conn: asyncpg.Connection, producer: RecordProducer) -> int:
        async with conn.transaction():
            claimed = await log_digest.claim(conn, self.batch_size)
            if not claimed:
                return 0
            checkpoints = [checkpoint_of(c) for _, c in claimed]
            try:
                await asyncio.wait_for(self._send(producer, checkpoints), self.timeout_s)
            except TimeoutError as exc:
                raise OSError(f"no acknowledgement within {self.timeout_s}s") from exc
            await log_digest.published(conn, [i for i, _ in claimed])
        self.published += len(claimed)
        return len(claimed)

    async def _send(self, producer: RecordProducer, checkpoints: list[LogCheckpoint]) -> None:
        headers = checkpoint_headers()
        futures = [
            await producer.produce(
                self.settings.checkpoints_topic,
                CHECKPOINTS,
                key=c.key,
                value=encode_checkpoint(c),
                headers=headers,
            )
            for c in checkpoints
        ]
        await asyncio.gather(*futures)
