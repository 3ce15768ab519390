"""The projector's health as one API process sees it: for the staleness guard, /readyz and
/metrics, cached so that a decision pays no extra query while the projector keeps up.

Design: docs/developers/design/projector-health.md
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import asyncpg

from projections import dead_letters, projector_health
from projections.freshness import PartitionFreshness, Verdict, assess
from projections.log_loss import LogLoss
from services.reads.shared_read import SharedRead

CACHE_S: Final = 1.0


@dataclass(frozen=True, slots=True)
class HealthSnapshot:
    partitions: list[PartitionFreshness]
    stops: list[LogLoss]
    verdict: Verdict


def _keep_fresh(verdict: Verdict) -> float:
    return CACHE_S if verdict.fresh else 0.0


class ProjectionHealth:
    def __init__(
        self,
        pool: asyncpg.Pool,
        topic: str,
        partition_count: int,
        max_staleness_ms: int,
        writer_key_id: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pool = pool
        self.topic = topic
        self.partition_count = partition_count
        self.max_staleness_s = max_staleness_ms / 1000
        #: the writer key this process MACs records with (Secrets.writers.current_id)
        self.writer_key_id = writer_key_id
        self.clock = clock
        self._verdicts = SharedRead(self._read_verdict, _keep_fresh, clock)
        #: the latest verdict read, and when its read started
        self._latest: tuple[float, Verdict] | None = None

    async def snapshot(self) -> HealthSnapshot:
        """Read the reports and stops now (never cached)."""
        partitions = await projector_health.load(self.pool, self.topic)
        stops = await projector_health.load_stops(self.pool, self.topic)
        verdict = assess(
            partitions, stops, self.partition_count, self.max_staleness_s, self.writer_key_id
        )
        return HealthSnapshot(partitions, stops, verdict)

    async def _read_verdict(self) -> Verdict:
        started = self.clock()
        verdict = (await self.snapshot()).verdict
        self._latest = (started, verdict)
        return verdict

    async def verdict(self) -> Verdict:
        """Whether decisions may be answered now; a fresh verdict is cached for CACHE_S, and
        concurrent requests without one share a single read."""
        return await self._verdicts.get()

    async def writes_verdict(self) -> Verdict:
        """For commands, which only `writes_refused` stops: the latest verdict while it is
        younger than CACHE_S, whether fresh or not, else a new (shared) read."""
        if self._latest is not None and self.clock() < self._latest[0] + CACHE_S:
            return self._latest[1]
        return await self.verdict()

    async def dead_letters(self) -> tuple[int, int]:
        """(dead letters ever, not yet published)."""
        return await dead_letters.counts(self.pool, self.topic)
