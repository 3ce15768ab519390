"""Fault 1: the broker is SIGKILLed and restarted, several times, while clients send commands
with Idempotency-Keys and retry each 503.

The broker is a Tansu process of its own whose log lives in an object store that outlives it
(durable_broker.py), so a restart comes back to everything it acknowledged, as Kafka does from
its disks. This proves: every command the API acknowledged is in the log under the event ids
of its answer and no others (a retry never mints new ids); a command whose client gave up is in
the log entirely or not at all; nothing is in the log that no client sent; and every projection
equals a clean replay of the log. It does not prove anything about the memory-only broker of
`consent-ledger up`, whose log a kill loses (see docs/operators/running.md).
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from tests.conftest import make_settings
from tests.faults.conftest import scaled
from tests.faults.durable_broker import DurableBroker
from tests.faults.kill_points import kill_point
from tests.faults.ledger_check import check_ledger
from tests.faults.processes import LedgerProcess
from tests.faults.workload import Tally, make_commands, resend_acked, run_clients
from tests.servers import Servers

pytestmark = pytest.mark.faults

COMMANDS = scaled(120)
KILLS = scaled(2, least=2)


async def test_acknowledged_commands_survive_broker_kills_exactly_once(
    real_servers: Servers, fault_seed: int, tmp_path: Path
) -> None:
    rng = random.Random(fault_seed)
    broker = DurableBroker(tmp_path)
    api = projector = None
    try:
        await broker.start_store()
        await broker.start()
        servers = Servers("embedded", broker.bootstrap_servers, real_servers.database_url, False)
        settings = await make_settings(servers, LEDGER_PRODUCE_TIMEOUT_MS="1000")
        api = LedgerProcess("api", settings, tmp_path / "api.log")
        projector = LedgerProcess("projector", settings, tmp_path / "projector.log")
        api.start()
        projector.start()
        await api.ready()
        await projector.ready()

        tally = Tally()
        commands = make_commands(rng, COMMANDS, COMMANDS // 4, "broker", abandon_share=0.1)
        clients = asyncio.create_task(
            run_clients(api.url, commands, tally, concurrency=8, timeout_s=180)
        )

        async def acked() -> int:
            return len(tally.acked)

        schedule = []
        for n in range(1, KILLS + 1):
            when = await kill_point(
                rng,
                acked,
                delay_s=(0.2, 2.0),
                steps=(5, 60),
                stop=clients.done,
                limit=COMMANDS * n // (KILLS + 1),
            )
            if clients.done():
                break
            broker.kill()
            outage = rng.uniform(1.2, 3.0)  # longer than the produce timeout
            schedule.append(f"kill {when}, {tally.in_flight} in flight, down {outage:.2f}s")
            await asyncio.sleep(outage)  # the outage itself
            await broker.start()
        await clients
        context = f"seed {fault_seed}; " + "; ".join(schedule)
        assert len(schedule) == KILLS, f"the workload ended before every kill: {context}"
        assert tally.unavailable > 0, f"no command saw the outage: {context}"
        assert api.running() and projector.running(), context

        resend = rng.sample(sorted(tally.acked), min(len(tally.acked), scaled(30)))
        assert await resend_acked(api.url, tally, resend) == [], context
        await check_ledger(servers, settings, tally, fault_seed)
    finally:
        for process in (api, projector):
            if process is not None:
                process.close()
        broker.close()
