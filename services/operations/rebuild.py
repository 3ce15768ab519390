"""`consent-ledger rebuild`: replay the event topic into fresh tables while the API keeps
serving the live ones, then switch to them in one transaction.

Design: docs/developers/design/rebuild.md
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

import asyncpg
from asyncpg.exceptions import DeadlockDetectedError, LockNotAvailableError

from projections import feed_outbox
from projections.rebuild_schema import (
    RebuildError,
    SwitchNotNow,
    carry_feed_outbox,
    carry_purged,
    check_live,
    check_same_columns,
    compare_digests,
    create_fresh,
    drop_schema,
    live_schema,
    lock_live,
    previous_schemas,
    stored_offsets,
    swap,
)
from projections.rebuild_tables import (
    REBUILD_SCHEMA,
    lag,
    newest_previous,
    previous_schema,
    quote_ident,
    total_records,
)
from projections.runner import apply_batch
from schemas.codec import EventCodec, default_codec
from services.bootstrap import connect_database, consumer_factory, operator_database
from services.config import Settings
from services.ledger.record_producer import writer_macs
from services.operations.rebuild_reader import CappedReader

log = logging.getLogger(__name__)

#: one rebuild or rollback at a time (a session advisory lock)
_LOCK_ID: Final = 0x4EB1D
#: how long the switch waits for a projector batch in progress to commit
BATCH_WAIT_MS: Final = 15000
#: how long the switch may take to read the last records up to the live offsets
CATCH_UP_S: Final = 30.0
#: how long the replay waits before looking again when it has reached the live tables
IDLE_S: Final = 0.1

#: (records read, records in the log as far as known)
ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class RebuildOptions:
    rollback: bool = False
    progress: bool = True
    #: start switching once the replay is at most this many records behind (None: one batch)
    switch_lag: int | None = None
    switch_attempts: int = 30
    #: the longest the switch holds up queries of the live tables, per attempt
    switch_lock_ms: int = 500


@dataclass(frozen=True, slots=True)
class Switched:
    """What one switch did."""

    #: where the replaced tables are now
    previous: str
    #: erased subjects whose purged proof stayed purged
    purged: int
    #: subjects the state feed will publish again
    queued: int
    digests_agree: int
    digests_differ: list[int]


@dataclass(slots=True)
class Outcome:
    #: where the replaced tables are now
    previous: str
    replayed: int
    seconds: float
    attempts: int
    purged: int
    queued: int
    digests_agree: int
    digests_differ: list[int] = field(default_factory=list)
    rollback: bool = False


async def rebuild(
    settings: Settings, options: RebuildOptions, progress: ProgressCallback = lambda *_: None
) -> Outcome:
    """Replay into fresh tables (or bring the replaced ones up to date) and switch."""
    conn = await connect_database(settings)
    try:
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", _LOCK_ID):
            raise RebuildError("another rebuild or rollback is running against this database")
        live = await live_schema(conn)
        await check_live(conn, live, settings.topic)
        if options.rollback:
            found = newest_previous(await previous_schemas(conn))
            if found is None:
                raise RebuildError("no replaced tables to roll back to (none kept)")
            incoming = found
        else:
            incoming = REBUILD_SCHEMA
            await create_fresh(conn, live, incoming)
        try:
            await check_same_columns(conn, live, incoming)
            return await _Switcher(settings, options, conn, live, incoming).run(progress)
        except BaseException:
            if not options.rollback:
                with contextlib.suppress(Exception):
                    await drop_schema(conn, incoming)
            raise
    finally:
        await conn.close()


class _Switcher:
    def __init__(
        self,
        settings: Settings,
        options: RebuildOptions,
        conn: asyncpg.Connection,
        live: str,
        incoming: str,
    ) -> None:
        self.settings = settings
        self.options = options
        self.topic = settings.topic
        self.conn = conn
        self.live = live
        self.incoming = incoming
        self.codec: EventCodec = default_codec()
        self.macs = writer_macs(settings.writer_key_ring())
        self.batch = settings.projector_batch
        self.reader = CappedReader(
            consumer_factory(settings),
            settings.topic,
            batch_size=self.batch,
            fetch_wait_ms=settings.projector_fetch_wait_ms,
        )

    async def run(self, progress: ProgressCallback) -> Outcome:
        replay = await connect_database(
            self.settings,
            server_settings={
                "search_path": f"{quote_ident(self.incoming)}, {quote_ident(self.live)}"
            },
        )
        started = time.monotonic()
        try:
            stored = await stored_offsets(replay, self.incoming, self.topic)
            if self.options.rollback:
                await self._ready_to_roll_back(replay, stored)
            await self.reader.start(stored)
            first = sum(stored.values())
            switched, attempts = await self._replay_and_switch(replay, progress)
            return Outcome(
                previous=switched.previous,
                replayed=sum(self.reader.positions.values()) - first,
                seconds=time.monotonic() - started,
                attempts=attempts,
                purged=switched.purged,
                queued=switched.queued,
                digests_agree=switched.digests_agree,
                digests_differ=switched.digests_differ,
                rollback=self.options.rollback,
            )
        finally:
            with contextlib.suppress(Exception):
                await self.reader.stop()
            await replay.close()

    async def _ready_to_roll_back(self, replay: asyncpg.Connection, stored: dict[int, int]) -> None:
        caps = await stored_offsets(self.conn, self.live, self.topic)
        ahead = sorted(p for p, n in stored.items() if n > caps.get(p, 0))
        if ahead:
            raise RebuildError(
                f"{self.incoming} stands past the live tables on partition(s) {ahead}: it"
                " describes another log (restored since?); rebuild instead"
            )
        # the state feed must publish the states of the tables switched back to
        await feed_outbox.refill(replay)

    async def _replay_and_switch(
        self, replay: asyncpg.Connection, progress: ProgressCallback
    ) -> tuple[Switched, int]:
        switch_lag = self.batch if self.options.switch_lag is None else self.options.switch_lag
        attempts = 0
        while True:
            caps = await stored_offsets(self.conn, self.live, self.topic)
            records = await self.reader.read(caps, timeout_ms=200)
            if records:
                await apply_batch(replay, self.codec, self.topic, records, self.macs)
            elif self.reader.waiting(caps):
                await asyncio.sleep(IDLE_S)
            positions = self.reader.positions
            progress(
                sum(positions.values()), total_records(self.reader.highwaters(), caps, positions)
            )
            if lag(caps, positions) > switch_lag:
                continue
            attempts += 1
            try:
                switched = await self._switch(replay)
            except SwitchNotNow as exc:
                if attempts >= self.options.switch_attempts:
                    raise SwitchNotNow(
                        f"the switch did not get its locks in {attempts} attempts ({exc});"
                        " nothing was switched: try again when the database is quieter"
                    ) from exc
                log.info("switch attempt %d rolled back (%s); trying again", attempts, exc)
                await self.reader.rewind(await stored_offsets(replay, self.incoming, self.topic))
                await asyncio.sleep(min(2.0, 0.1 * attempts))
                continue
            positions = self.reader.positions
            progress(sum(positions.values()), sum(positions.values()))
            return switched, attempts

    async def _switch(self, replay: asyncpg.Connection) -> Switched:
        """One attempt, one transaction: SwitchNotNow when it rolled back to try again."""
        try:
            async with replay.transaction():
                await replay.execute(f"SET LOCAL lock_timeout = {BATCH_WAIT_MS}")
                caps = await lock_live(replay, self.live, self.topic)
                await self._catch_up(replay, caps)
                mine = await stored_offsets(replay, self.incoming, self.topic)
                if mine != caps:
                    raise RebuildError(
                        f"the replay stands at {mine}, the live tables at {caps}: the log and"
                        " the live tables disagree; nothing was switched"
                    )
                purged = await carry_purged(replay, self.live, self.incoming)
                queued = await carry_feed_outbox(replay, self.live, self.incoming)
                agree, differ = await compare_digests(replay, self.live, self.incoming, self.topic)
                at = datetime.now(UTC)
                previous = previous_schema(at)
                await replay.execute(f"SET LOCAL lock_timeout = {self.options.switch_lock_ms}")
                await swap(
                    replay,
                    live=self.live,
                    incoming=self.incoming,
                    previous=previous,
                    topic=self.topic,
                    expected=caps,
                    note=f"tables replaced by consent-ledger rebuild at {at.isoformat()}",
                )
        except (LockNotAvailableError, DeadlockDetectedError) as exc:
            raise SwitchNotNow(str(exc)) from exc
        return Switched(previous, purged, queued, agree, differ)

    async def _catch_up(self, replay: asyncpg.Connection, caps: dict[int, int]) -> None:
        """Apply the last records up to exactly `caps` (inside the switch transaction)."""
        deadline = time.monotonic() + CATCH_UP_S
        while not self.reader.waiting(caps):
            if time.monotonic() > deadline:
                raise SwitchNotNow("the last records before the live offsets did not arrive")
            records = await self.reader.read(caps, timeout_ms=200)
            if records:
                await apply_batch(replay, self.codec, self.topic, records, self.macs)


async def drop_previous(settings: Settings) -> list[str]:
    """Drop every schema of replaced tables; returns their names."""
    async with operator_database(settings) as conn:
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", _LOCK_ID):
            raise RebuildError("a rebuild or rollback is running against this database")
        dropped = await previous_schemas(conn)
        for schema in dropped:
            await drop_schema(conn, schema)
        return dropped
