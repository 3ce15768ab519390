"""Fault 4: the API process is SIGKILLed mid-request, several times, while eight clients send
commands with Idempotency-Keys; each client retries a dropped connection or a 503 with the same
key once the API is back (some clients give up instead).

A kill can land anywhere in a command: before its key is stored, between storing it and
sending the records, between the broker's acknowledgement and the answer. This proves: no
acknowledged command is missing or has more event ids than its answer named (no duplicate
event), a command whose client gave up is in the log entirely or not at all (no partial
event), nothing unsent is in the log, and the projections equal a clean replay.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from services.config import Settings
from tests.faults.conftest import scaled
from tests.faults.kill_points import kill_point
from tests.faults.ledger_check import check_ledger
from tests.faults.processes import LedgerProcess
from tests.faults.workload import Tally, make_commands, resend_acked, run_clients
from tests.servers import Servers

pytestmark = pytest.mark.faults

COMMANDS = scaled(120)
KILLS = scaled(2, least=2)


async def test_api_killed_mid_request_leaves_no_partial_or_duplicate_events(
    real_servers: Servers, settings: Settings, fault_seed: int, tmp_path: Path
) -> None:
    rng = random.Random(fault_seed)
    api = LedgerProcess("api", settings, tmp_path / "api.log")
    projector = LedgerProcess("projector", settings, tmp_path / "projector.log")
    try:
        api.start()
        projector.start()
        await api.ready()
        await projector.ready()

        tally = Tally()
        commands = make_commands(rng, COMMANDS, COMMANDS // 4, "api", abandon_share=0.15)
        clients = asyncio.create_task(
            run_clients(api.url, commands, tally, concurrency=8, timeout_s=180)
        )

        async def acked() -> int:
            return len(tally.acked)

        schedule = []
        in_flight_at_kills = []
        for n in range(1, KILLS + 1):
            when = await kill_point(
                rng,
                acked,
                delay_s=(0.2, 1.5),
                steps=(3, 30),
                stop=clients.done,
                limit=COMMANDS * n // (KILLS + 1),
            )
            if clients.done():
                break
            in_flight_at_kills.append(tally.in_flight)
            api.kill()
            schedule.append(f"kill {when} with {tally.in_flight} requests in flight")
            api.start()
            await api.ready()
        await clients
        context = f"seed {fault_seed}; " + "; ".join(schedule)
        assert len(schedule) == KILLS, f"the workload ended before every kill: {context}"
        assert any(in_flight_at_kills), f"no kill landed mid-request: {context}"
        assert tally.dropped > 0, context

        resend = rng.sample(sorted(tally.acked), min(len(tally.acked), scaled(30)))
        assert await resend_acked(api.url, tally, resend) == [], context
        await check_ledger(real_servers, settings, tally, fault_seed)
    finally:
        api.close()
        projector.close()
