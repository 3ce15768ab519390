"""Fault 5: two projector processes share the partitions; each time one joins, the other is
SIGKILLed during the rebalance that follows (as its partitions are revoked, or at a random
moment of the join), while new records keep arriving.

The survivor then takes every partition over. This proves that nothing is applied twice (the
journal holds each event once, and the running per-partition digest, which folds every record
exactly once, equals a clean replay's) and nothing is skipped (the stored offsets reach the
log's end and every table equals a clean replay).
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import replace
from pathlib import Path

import pytest

from services.config import Settings
from tests.conftest import wait_until
from tests.faults.conftest import scaled
from tests.faults.ledger_check import projection_findings, wait_caught_up
from tests.faults.log_audit import distinct_event_ids, read_log
from tests.faults.processes import LedgerProcess
from tests.integration.replay import produce_log
from tests.servers import Servers

pytestmark = pytest.mark.faults

EVENTS = scaled(800)
ROUNDS = scaled(2, least=2)


async def test_projector_killed_during_a_rebalance_applies_nothing_twice_and_skips_nothing(
    real_servers: Servers, settings: Settings, fault_seed: int, tmp_path: Path
) -> None:
    rng = random.Random(fault_seed)
    settings = replace(settings, projector_batch=rng.choice([50, 100, 250]))
    half = EVENTS // 2
    first = await produce_log(settings, half, subjects=max(10, EVENTS // 10), seed=fault_seed)
    running = LedgerProcess("projector", settings, tmp_path / "a.log")
    joining = LedgerProcess("projector", settings, tmp_path / "b.log")
    partitions = list(range(settings.topic_partitions))
    schedule: list[str] = []
    try:
        running.start()
        await running.ready()
        # the rest of the log arrives while the group rebalances
        second = asyncio.create_task(
            produce_log(
                settings, EVENTS - half, subjects=max(10, EVENTS // 10), seed=fault_seed + 1
            )
        )
        for _ in range(ROUNDS):
            revoked = running.revoked()
            joining.start()
            if rng.random() < 0.5:

                async def rebalancing(victim: LedgerProcess = running, seen: int = revoked) -> bool:
                    return victim.revoked() > seen

                await wait_until(rebalancing, 60, "the rebalance to revoke partitions")
                when = "as its partitions were revoked"
            else:
                delay = rng.uniform(0, 2 * settings.kafka_session_timeout_ms / 1000)
                await asyncio.sleep(delay)  # a random moment of the join: the fault's timing
                when = f"{delay:.2f}s after the other started"
            running.kill()
            schedule.append(f"killed {running.log.name} {when}")

            async def took_over(survivor: LedgerProcess = joining) -> bool:
                return survivor.assigned() == partitions

            await wait_until(took_over, 60, "the survivor to take every partition")
            running, joining = joining, running
        await second
        await wait_caught_up(settings)
        assert running.stop() == 0
    finally:
        running.close()
        joining.close()

    context = f"seed {fault_seed}, batch {settings.projector_batch}; " + "; ".join(schedule)
    logged = await read_log(settings.kafka, settings.topic)
    ids = distinct_event_ids(logged)
    assert (len(logged), len(ids)) == (first + second.result(), EVENTS), context
    findings = await projection_findings(real_servers, settings, ids)
    assert not findings, context + "\n" + "\n".join(findings)
    print(context)
