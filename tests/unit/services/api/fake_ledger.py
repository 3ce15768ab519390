"""An in-memory ledger, so the real app can be tested in-process without a broker or database.

`FakeLedger` builds a `Ledger` (services/bootstrap.py) whose collaborators keep everything in
memory: the publisher records each event and acknowledges it at once; the projection is the
fold of what was recorded (projections/state.py), applied as soon as it is recorded, so a
decision sees the commands before it; the projector's reports are fresh unless a test stops
it; the API keys are made here. Nothing stands in for PostgreSQL or the Kafka producer: a
handler that reaches `ledger.pool` (or the producer) fails its test with the name of what it
reached. Such a handler is tested in tests/integration.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NoReturn, cast

import asyncpg

from projections.freshness import PartitionFreshness, assess
from projections.log_loss import LogLoss
from projections.outdating import Notice, Notices
from projections.state import ERASURE, Fact, FactKey, fold
from projections.subject_state import Loaded
from schemas.codec import default_codec
from schemas.events import Event
from services.bootstrap import Ledger
from services.config import Settings
from services.identity.api_key_store import ADMIN_KEY_NAME, KeyCache
from services.identity.api_keys import (
    ADMIN,
    FROM_ADMIN_VARIABLE,
    FROM_COMMAND,
    KeyRow,
    key_hash,
    key_id,
    new_key,
)
from services.identity.keystore import DataKeys
from services.ledger.partitioning import partition_for
from services.ledger.publisher import Publisher
from services.ledger.record_producer import writer_macs
from services.reads.coalescer import Coalescer
from services.reads.notice_cache import NoticeCache
from services.reads.progress import ProjectionProgress
from services.reads.projection_health import HealthSnapshot, ProjectionHealth
from services.reads.purpose_cache import PurposeCache
from services.rules.catalogue import load_catalogue


async def _no_connection() -> asyncpg.Connection:
    raise AssertionError(
        "the app asked for a PostgreSQL connection: test this in tests/integration"
    )


class NoServer:
    """Where a connection to a server would be: any use but `close` fails the test."""

    def __init__(self, what: str) -> None:
        self.what = what

    def __getattr__(self, name: str) -> NoReturn:
        raise AssertionError(
            f"the app reached {self.what} ({name}), which in-process tests do not have:"
            " test this in tests/integration"
        )

    async def close(self) -> None:
        """The lifespan closes the pool when the app stops."""


@dataclass(frozen=True, slots=True)
class Sent:
    """A record the publisher acknowledged: its event, for the event topic."""

    topic: str
    partition: int
    offset: int
    key: bytes
    value: bytes
    event: Event | None


class RecordingPublisher(Publisher):
    """Acknowledges each record at once, at the next offset of its partition, and keeps it."""

    def __init__(self, settings: Settings, partitions: int) -> None:
        macs = writer_macs(settings.writer_key_ring())
        producer = NoServer("the Kafka producer")  # aiokafka is untyped: no cast needed
        super().__init__(producer, settings.topic, settings.produce_timeout_ms / 1000, macs)
        self.partitions = partitions
        self.sent: list[Sent] = []

    def _append(
        self, topic: str, partition: int, key: bytes, value: bytes, event: Event | None
    ) -> tuple[int, int]:
        offset = self.next_offset(topic, partition)
        self.sent.append(Sent(topic, partition, offset, key, value, event))
        return partition, offset

    async def publish(self, records: Sequence[tuple[Event, bytes]]) -> list[tuple[int, int]]:
        assert self.partitions is not None
        return [
            self._append(
                self.topic,
                partition_for(event.subject_id, self.partitions),
                event.subject_id.encode(),
                value,
                event,
            )
            for event, value in records
        ]

    async def publish_record(
        self, topic: str, role: str, key: bytes, value: bytes, headers: list[tuple[str, bytes]]
    ) -> tuple[int, int]:
        """A record for another topic (the batch check's evidence), on its partition 0."""
        return self._append(topic, 0, key, value, None)

    async def partition_count(self) -> int:
        assert self.partitions is not None
        return self.partitions

    def next_offset(self, topic: str, partition: int) -> int:
        return sum(1 for s in self.sent if s.topic == topic and s.partition == partition)

    def events(self) -> list[Event]:
        """The events recorded on the event topic, in order."""
        return [s.event for s in self.sent if s.event is not None]


class AppliedAtOnce(ProjectionProgress):
    """The projection's positions: everything recorded is applied."""

    def __init__(self, publisher: RecordingPublisher, topic: str) -> None:
        super().__init__(cast(asyncpg.Pool, NoServer("PostgreSQL")), topic)
        self.publisher = publisher

    async def refresh(self) -> dict[int, int]:
        assert self.publisher.partitions is not None
        for partition in range(self.publisher.partitions):
            self.positions[partition] = self.publisher.next_offset(self.topic, partition)
        return self.positions


class ReportedHealth(ProjectionHealth):
    """The projector's reports: every partition caught up, its projector knowing this API's
    writer key, unless a test adds `stops` (a loss detected) or sets `known_writer_keys`."""

    def __init__(self, settings: Settings, publisher: RecordingPublisher, partitions: int) -> None:
        super().__init__(
            cast(asyncpg.Pool, NoServer("PostgreSQL")),
            settings.topic,
            partitions,
            settings.max_staleness_ms,
            settings.writer_key_ring().current_id,
        )
        self.publisher = publisher
        self.stops: list[LogLoss] = []
        self.known_writer_keys: tuple[str, ...] = (self.writer_key_id,)

    async def snapshot(self) -> HealthSnapshot:
        reports = [
            PartitionFreshness(p, end, end, 0.0, self.known_writer_keys)
            for p in range(self.partition_count)
            for end in [self.publisher.next_offset(self.topic, p)]
        ]
        verdict = assess(
            reports, self.stops, self.partition_count, self.max_staleness_s, self.writer_key_id
        )
        return HealthSnapshot(reports, list(self.stops), verdict)


class PublishedNotices(NoticeCache):
    """The privacy notices a test published (`published`)."""

    def __init__(self) -> None:
        super().__init__(cast(asyncpg.Pool, NoServer("PostgreSQL")))
        self.published: list[Notice] = []

    async def covering(self, applied: int) -> Notices:
        return Notices.of(self.published)


class InMemoryKeys(KeyCache):
    """The API's copy of the keys, with rows made here instead of read from `api_keys`."""

    def __init__(self, max_age_s: float, hash_key: bytes) -> None:
        super().__init__(cast(asyncpg.Pool, NoServer("PostgreSQL")), max_age_s, hash_key)
        self.stored: dict[str, KeyRow] = {}

    async def start(self, connect: Callable[[], Awaitable[asyncpg.Connection]]) -> None:
        await self.reload()

    async def reload(self) -> None:
        self.rows = dict(self.stored)
        self.loaded_at = time.monotonic()

    async def close(self) -> None:
        """No listener, no refresh task."""

    def add(
        self, *scopes: str, name: str = "crm", key: str | None = None, origin: str = FROM_COMMAND
    ) -> str:
        """Store a key with `scopes` (a new one unless `key` is given) as `keys create` would,
        loaded at once as after its NOTIFY; returns the key."""
        key = key or new_key()[1]
        row = KeyRow(
            key_id(key),
            name,
            frozenset(scopes),
            key_hash(key, self.hash_key),
            datetime.now(UTC),
            None,
            origin=origin,
        )
        self.stored[row.key_id] = row
        self.rows[row.key_id] = row
        return key


class FakeLedger:
    """A `Ledger` of in-memory collaborators, and the seams of create_app that open it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        secrets = settings.secrets()
        partitions = settings.topic_partitions
        no_database = cast(asyncpg.Pool, NoServer("PostgreSQL"))
        self.publisher = RecordingPublisher(settings, partitions)
        self.health = ReportedHealth(settings, self.publisher, partitions)
        self.notices = PublishedNotices()
        self.keys = InMemoryKeys(settings.api_key_refresh_s, secrets.api_key_hash_key)
        self.ledger = Ledger(
            settings=settings,
            purposes=PurposeCache(no_database, load_catalogue(settings.catalogue_file)),
            codec=default_codec(),
            pool=no_database,
            publisher=self.publisher,
            progress=AppliedAtOnce(self.publisher, settings.topic),
            partitions=partitions,
            secrets=secrets,
            data_keys=DataKeys(no_database, secrets.master),
            health=self.health,
            notices=self.notices,
            states=Coalescer(self._states),
            erased=Coalescer(self._erased),
            audience_streams=asyncio.Semaphore(settings.audience_max_streams),
        )

    def state_of(self, subject_id: str) -> dict[FactKey, Fact]:
        """The subject's projected state: the fold of its recorded events."""
        return fold(
            (s.event, (s.partition, s.offset))
            for s in self.publisher.sent
            if s.event is not None and s.event.subject_id == subject_id
        )

    async def _states(self, asked: Sequence[tuple[str, int]]) -> dict[tuple[str, int], Loaded]:
        topic = self.settings.topic
        applied = len(self.notices.published)
        return {
            (subject_id, partition): (
                self.state_of(subject_id),
                self.publisher.next_offset(topic, partition),
                applied,
            )
            for subject_id, partition in asked
        }

    async def _erased(self, subject_ids: Sequence[str]) -> dict[str, bool]:
        return {
            s: any(fact.kind == ERASURE for fact in self.state_of(s).values()) for s in subject_ids
        }

    async def open(self, settings: Settings) -> Ledger:
        """create_app's `open_fn`."""
        return self.ledger

    @contextlib.asynccontextmanager
    async def open_keys(self, ledger: Ledger, settings: Settings) -> AsyncIterator[KeyCache]:
        """create_app's `keys_fn`: LEDGER_ADMIN_KEY registered, as the real one does."""
        if settings.admin_key:
            self.keys.add(
                ADMIN, name=ADMIN_KEY_NAME, key=settings.admin_key, origin=FROM_ADMIN_VARIABLE
            )
        await self.keys.start(_no_connection)
        try:
            yield self.keys
        finally:
            await self.keys.close()
