"""Fault 2: the projector process is SIGKILLed at random points, many times, while it replays a
large log (with retried records in it): when it finally catches up, every projection equals a
clean replay of the same log, and the journal holds each event of the log once.

Kill points are drawn from a seeded random.Random: some a random time after the projector got
its partitions, some after a random number of further records applied (read from
projector_offsets), with a random batch size, so kills land before, inside and between batches.
"""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import asyncpg
import pytest

from services.config import Settings
from tests.faults.conftest import scaled
from tests.faults.kill_points import kill_point
from tests.faults.ledger_check import projection_findings, wait_caught_up
from tests.faults.log_audit import distinct_event_ids, read_log
from tests.faults.processes import LedgerProcess
from tests.integration.replay import produce_log
from tests.servers import Servers

pytestmark = pytest.mark.faults

EVENTS = scaled(3000)  # a few thousand: the projector applies that many a second
KILLS = scaled(4, least=3)


async def test_projector_killed_at_random_points_ends_equal_to_a_clean_replay(
    real_servers: Servers, settings: Settings, fault_seed: int, tmp_path: Path
) -> None:
    rng = random.Random(fault_seed)
    settings = replace(settings, projector_batch=rng.choice([10, 25, 50, 100]))
    records = await produce_log(settings, EVENTS, subjects=max(10, EVENTS // 12), seed=fault_seed)
    projector = LedgerProcess("projector", settings, tmp_path / "projector.log")
    conn = await asyncpg.connect(settings.database_url)

    async def applied() -> int:
        count = await conn.fetchval(
            "SELECT coalesce(sum(next_offset), 0) FROM projector_offsets WHERE topic = $1",
            settings.topic,
        )
        return int(count)

    schedule: list[str] = []
    applied_at_kills: list[int] = []
    try:
        for left in range(KILLS, 0, -1):
            projector.start()
            await projector.ready()
            # spread the progress targets over what is left, so most kills land mid-replay
            share = max(2, (records - await applied()) // (left + 1))
            when = await kill_point(
                rng, applied, delay_s=(0.0, 0.3), steps=(1, share), limit=records
            )
            projector.kill()
            applied_at_kills.append(await applied())
            schedule.append(f"kill {when}: {applied_at_kills[-1]} of {records} applied")
        projector.start()
        await projector.ready()
        await wait_caught_up(settings)
        assert projector.stop() == 0
    finally:
        projector.close()
        await conn.close()

    context = f"seed {fault_seed}, batch {settings.projector_batch}; " + "; ".join(schedule)
    mid_replay = [n for n in applied_at_kills if 0 < n < records]
    assert len(mid_replay) >= 2, f"too few kills landed mid-replay: {context}"
    logged = await read_log(settings.kafka, settings.topic)
    ids = distinct_event_ids(logged)
    assert (len(logged), len(ids)) == (records, EVENTS), context
    findings = await projection_findings(real_servers, settings, ids)
    assert not findings, context + "\n" + "\n".join(findings)
    print(context)
