"""The projector's watch over its log: loss detection and health reports, between batches.

Design: docs/developers/design/projector.md
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Final

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from projections import projector_health
from projections.log_loss import LogLoss, summary
from projections.partition_watch import PartitionWatch, refused

log = logging.getLogger("projections.runner")

#: how often a projector reports its partitions and looks for a stop or its clearing
REPORT_INTERVAL_S: Final = 1.0
#: how long fetches must keep reporting the end of the log below a position before it stops
LOSS_CONFIRM_S: Final = 10.0
#: how often a stopped projector repeats its ERROR line
ALARM_INTERVAL_S: Final = 30.0
ADVICE: Final = (
    "not applying anything until an operator clears the stop (docs/operators/projector-health.md;"
    " `consent-ledger resume-projector`)"
)


class ProjectorMonitor:
    def __init__(
        self, consumer: AIOKafkaConsumer, topic: str, *, writer_key_ids: Sequence[str]
    ) -> None:
        self.consumer = consumer
        self.topic = topic
        #: the writer keys this projector checks MACs with, reported with its partitions
        self.writer_key_ids = tuple(writer_key_ids)
        self.watch = PartitionWatch()
        #: non-empty while the topic's projectors are stopped by loss detection
        self.stops: list[LogLoss] = []
        #: set once every assigned partition has been reported (or the projector stopped)
        self.reported_all = False
        self._next_report = 0.0
        self._next_alarm = 0.0
        #: when fetches first reported the end of the log below a position (unconfirmed loss)
        self._suspected_since: float | None = None

    async def assigned(
        self,
        conn: asyncpg.Connection,
        assigned: Sequence[TopicPartition],
        stored: Mapping[int, int],
    ) -> None:
        """Check a new assignment (or a re-read after a failure) against the log start; pause
        it while the topic is stopped."""
        starts = await self.consumer.beginning_offsets(list(assigned)) if assigned else {}
        losses = self.watch.assign(
            (tp.partition for tp in assigned),
            stored,
            {tp.partition: int(offset) for tp, offset in starts.items()},
        )
        self.reported_all = False
        await projector_health.report_writer_keys(
            conn, self.topic, [tp.partition for tp in assigned], self.writer_key_ids
        )
        if losses:
            await self.stop(conn, losses)
            return
        self.stops = await projector_health.load_stops(conn, self.topic)
        if self.stops:
            self._alarm("the projector is stopped")
            self.consumer.pause(*assigned)
        else:
            self.consumer.resume(*assigned)

    def revoked(self) -> None:
        """Report nothing of partitions another projector may own now."""
        self.watch.assign((), {}, {})

    def applied(self, positions: Mapping[int, int]) -> None:
        self.watch.applied(positions)

    async def check_fetched(self, conn: asyncpg.Connection) -> bool:
        """After a fetch: True when the projector must not apply (stopped, or stopping now
        because a position is beyond the end of the log)."""
        if self.stops:
            return True
        highwaters = {
            tp.partition: self.consumer.highwater(tp) for tp in self.consumer.assignment()
        }
        losses = self.watch.losses(highwaters)
        if not losses:
            self._suspected_since = None
            return False
        now = time.monotonic()
        if self._suspected_since is None:
            self._suspected_since = now
            log.warning(
                "the log ends before the stored position (%s); confirming for %.0f s before"
                " stopping, applying nothing meanwhile",
                summary(losses),
                LOSS_CONFIRM_S,
            )
        if now - self._suspected_since >= LOSS_CONFIRM_S:
            self._suspected_since = None
            await self.stop(conn, losses)
        return True

    async def out_of_range(
        self, conn: asyncpg.Connection, refusals: Mapping[TopicPartition, int]
    ) -> None:
        """The broker refused fetch offsets (OffsetOutOfRange): find out which bound, stop."""
        assigned = set(self.consumer.assignment())
        tps = [tp for tp in refusals if tp in assigned]
        starts = await self.consumer.beginning_offsets(tps) if tps else {}
        await self.stop(
            conn,
            [
                refused(tp.partition, refusals[tp], starts.get(tp), self.consumer.highwater(tp))
                for tp in tps
            ],
        )

    async def stop(self, conn: asyncpg.Connection, losses: Sequence[LogLoss]) -> None:
        if not losses:
            return
        await projector_health.record_stops(conn, self.topic, losses)
        self.stops = await projector_health.load_stops(conn, self.topic) or list(losses)
        self.consumer.pause(*self.consumer.assignment())
        self._alarm(f"the log lost records the projection needs: {summary(losses)}")

    def _alarm(self, what: str) -> None:
        log.error("%s; stopped on %s: %s; %s", what, self.topic, summary(self.stops), ADVICE)
        self._next_alarm = time.monotonic() + ALARM_INTERVAL_S

    async def report(self, conn: asyncpg.Connection) -> bool:
        """About once a second: follow stops recorded or cleared elsewhere, repeat the alarm,
        and report the partitions. True when an operator cleared the stop: the caller reads
        the stored offsets again (which checks the log again) before fetching."""
        now = time.monotonic()
        if now < self._next_report:
            return False
        self._next_report = now + REPORT_INTERVAL_S
        stops = await projector_health.load_stops(conn, self.topic)
        cleared = bool(self.stops) and not stops
        if stops and not self.stops:
            self.stops = stops
            self.consumer.pause(*self.consumer.assignment())
            self._alarm("another projector found that the log lost records")
        elif cleared:
            log.warning("the stop on %s was cleared; checking the log again", self.topic)
            self.stops = []
        elif self.stops and now >= self._next_alarm:
            self.stops = stops
            self._alarm("still stopped")
        assignment = self.consumer.assignment()
        for tp in assignment:
            self.watch.observe(
                tp.partition, self.consumer.highwater(tp), self.consumer.last_poll_timestamp(tp)
            )
        reports = self.watch.reports(int(time.time() * 1000), stopped=bool(self.stops))
        await projector_health.report(conn, self.topic, reports, self.writer_key_ids)
        if assignment and (self.stops or all(r.highwater is not None for r in reports)):
            self.reported_all = True
        return cleared
