"""The state feed: publish each changed subject's direct-marketing summary on the compacted
state topic (`LEDGER_STATE_TOPIC`), keyed by subject id.

Runs beside the consumer loop in every projector process. It drains the outbox the projector
fills in each batch's transaction (projections/feed_outbox.py), so nothing applied is ever
left unpublished; a crash between producing and deleting the outbox rows only publishes those
subjects again. Delivery is at least once: the latest record per key is the subject's state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Final

import asyncpg

from projections import feed_outbox, notices
from projections.feed_outbox import Claim
from projections.runner import NOTIFY_CHANNEL
from schemas.feeds import SCHEMA_HEADER, SUBJECT_STATE, encode_subject_state
from schemas.record_mac import STATE
from services.config import Settings
from services.ledger.record_producer import RecordProducer
from services.ledger.topic import highwaters
from services.projector.outbox_publishing import (
    TRANSIENT,
    PublishingSession,
    Wakeup,
    keep_running,
)
from services.reads.purpose_cache import PurposeCache
from services.rules.catalogue import Catalogue
from services.rules.state_summary import is_erased, subject_state_record

log = logging.getLogger(__name__)

#: how often an idle feed looks at the outbox without a NOTIFY (released or expired claims)
POLL_S: Final = 1.0


def _utcnow() -> datetime:
    return datetime.now(UTC)


class StateFeed:
    """One publisher; several (one per projector process) share the outbox."""

    def __init__(
        self,
        settings: Settings,
        catalogue: Catalogue,
        *,
        sessions: PublishingSession,
        batch_size: int = 500,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.settings = settings
        #: the log's purpose catalogue (`catalogue`, the file, until the log holds it), read
        #: again through the feed's connection when the projector applied a new version
        self.purposes = PurposeCache(None, catalogue)
        self.sessions = sessions
        self.batch_size = batch_size
        self.clock = clock
        self.timeout_s = settings.produce_timeout_ms / 1000
        # long enough for a produce that runs into its timeout; a crashed holder's rows wait
        self.lease_s = max(10.0, 3 * self.timeout_s)
        self.published = 0
        #: set once the feed has checked the state topic and is draining the outbox
        self.ready = asyncio.Event()
        self._wake = Wakeup(POLL_S)

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until `stop`; broker and database failures are retried with back-off."""
        await keep_running("state feed", self._session, stop, lambda: self.published)

    async def _session(self, stop: asyncio.Event) -> None:
        async with self.sessions() as (conn, producer):
            await conn.add_listener(NOTIFY_CHANNEL, self._wake.notified)
            await self.refill_if_empty(conn)
            self.ready.set()
            while not stop.is_set():
                self._wake.clear()
                if not await self.publish_batch(conn, producer):
                    await self._wake.idle(stop)

    async def refill_if_empty(self, conn: asyncpg.Connection) -> int:
        """Queue every subject when the state topic holds nothing but the journal does: a
        new state topic, or the embedded broker restarted with an empty log."""
        try:
            marks = await highwaters(self.settings.kafka, self.settings.state_topic)
        except TimeoutError as exc:
            raise OSError(
                f"state topic {self.settings.state_topic} not found; run `consent-ledger init`"
            ) from exc
        if any(marks.values()):
            return 0
        queued = await feed_outbox.refill(conn)
        if queued:
            log.warning(
                "state topic %s is empty: queued all %d subjects to publish",
                self.settings.state_topic,
                queued,
            )
        return queued

    async def publish_batch(self, conn: asyncpg.Connection, producer: RecordProducer) -> int:
        """Claim, load, publish and settle one batch of queued subjects; returns how many."""
        claims = await feed_outbox.claim(conn, self.batch_size, self.lease_s)
        if not claims:
            return 0
        try:
            await self._publish(conn, producer, claims)
        except Exception:
            with contextlib.suppress(*TRANSIENT):
                await feed_outbox.release(conn, claims)
            raise
        await feed_outbox.done(conn, claims)
        self.published += len(claims)
        return len(claims)

    async def _publish(
        self, conn: asyncpg.Connection, producer: RecordProducer, claims: Sequence[Claim]
    ) -> None:
        loaded = await feed_outbox.load(conn, self.settings.topic, claims)
        await self.purposes.refresh(conn)
        catalogue = self.purposes.catalogue
        published = await notices.load(conn)
        now = self.clock()
        headers = [(SCHEMA_HEADER, SUBJECT_STATE.encode("ascii"))]
        # an erased subject's record is a tombstone (null value): caches forget the subject
        values = [
            (
                s.subject_id,
                None
                if is_erased(s.facts)
                else encode_subject_state(
                    subject_state_record(
                        s.subject_id,
                        s.facts,
                        catalogue,
                        now,
                        partition=s.partition,
                        next_offset=s.next_offset,
                        notices=published,
                    )
                ),
            )
            for s in loaded
        ]

        async def send_all() -> None:
            futures = [
                await producer.produce(
                    self.settings.state_topic,
                    STATE,
                    key=subject_id.encode("utf-8"),
                    value=value,
                    headers=headers if value is not None else [],
                )
                for subject_id, value in values
            ]
            await asyncio.gather(*futures)

        try:
            await asyncio.wait_for(send_all(), self.timeout_s)
        except TimeoutError as exc:
            raise OSError(f"no acknowledgement within {self.timeout_s}s") from exc
