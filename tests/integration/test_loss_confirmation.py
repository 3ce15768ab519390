"""A fetch reporting the end of the log below the position stops the projector only once the
regression has lasted LOSS_CONFIRM_S: a leader change can briefly report a lower high-water
mark (KAFKA-2334). The consumer here is a stand-in for aiokafka's; the stops are real rows."""

from __future__ import annotations

from types import SimpleNamespace

import asyncpg
import pytest
from aiokafka import TopicPartition

from projections import projector_health, projector_monitor
from projections.log_loss import AHEAD_OF_LOG
from projections.projector_monitor import LOSS_CONFIRM_S, ProjectorMonitor
from services.config import Settings
from tests.writer_macs import TEST_MACS

pytestmark = pytest.mark.integration


class OnePartitionConsumer:
    """What the monitor asks of a consumer: its assignment, high-water marks, pausing."""

    def __init__(self, topic: str, highwater: int) -> None:
        self.tp = TopicPartition(topic, 0)
        self.highwater_now = highwater
        self.paused: list[TopicPartition] = []

    def assignment(self) -> set[TopicPartition]:
        return {self.tp}

    def highwater(self, tp: TopicPartition) -> int:
        return self.highwater_now

    def pause(self, *tps: TopicPartition) -> None:
        self.paused.extend(tps)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(projector_monitor, "time", SimpleNamespace(monotonic=fake.monotonic))
    return fake


def watching(settings: Settings, highwater: int) -> tuple[ProjectorMonitor, OnePartitionConsumer]:
    consumer = OnePartitionConsumer(settings.topic, highwater)
    monitor = ProjectorMonitor(consumer, settings.topic, writer_key_ids=TEST_MACS.key_ids)
    assert monitor.watch.assign([0], {0: 100}, {0: 0}) == []
    return monitor, consumer


async def test_a_brief_regression_pauses_applying_but_stops_nothing(
    settings: Settings, db: asyncpg.Connection, clock: Clock
) -> None:
    monitor, consumer = watching(settings, highwater=90)
    assert await monitor.check_fetched(db)  # nothing applied from this fetch
    clock.now += LOSS_CONFIRM_S / 2
    assert await monitor.check_fetched(db)
    consumer.highwater_now = 120  # the new leader caught up
    assert not await monitor.check_fetched(db)
    clock.now += LOSS_CONFIRM_S * 2
    assert not await monitor.check_fetched(db)
    assert monitor.stops == [] and consumer.paused == []
    assert await projector_health.load_stops(db, settings.topic) == []


async def test_a_lasting_regression_stops_every_projector(
    settings: Settings, db: asyncpg.Connection, clock: Clock
) -> None:
    monitor, consumer = watching(settings, highwater=90)
    assert await monitor.check_fetched(db)
    clock.now += LOSS_CONFIRM_S
    assert await monitor.check_fetched(db)
    [stop] = await projector_health.load_stops(db, settings.topic)
    assert (stop.partition, stop.problem, stop.stored_offset) == (0, AHEAD_OF_LOG, 100)
    assert consumer.paused == [consumer.tp]
