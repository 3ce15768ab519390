"""Fault 3: PostgreSQL stops hard (immediate shutdown) mid-run and starts again, while clients
send commands with Idempotency-Keys and retry each 503.

During the outage every query and command that needs the database answers 503 with a problem
document, never 500; afterwards the same API and projector processes (never restarted)
answer and project again, the projector catches up with the log, and the log and projections
pass the same checks as after the other faults. The PostgreSQL is the test's own: the session's
server, which other tests use, is never touched.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_HEADERS, make_settings, wait_until
from tests.faults.conftest import scaled
from tests.faults.crashable_postgres import CrashablePostgres
from tests.faults.kill_points import kill_point
from tests.faults.ledger_check import check_ledger
from tests.faults.processes import LedgerProcess
from tests.faults.workload import Command, Tally, make_commands, run_clients
from tests.servers import Servers

pytestmark = pytest.mark.faults

COMMANDS = scaled(80)
OUTAGES = scaled(1, least=1)


def probes(command: Command) -> list[tuple[str, str, dict[str, Any] | None]]:
    """Requests that need the database: (method, path, JSON body); the last is `command`."""
    subject = command.subject_id
    decision = f"/v1/decision?subject_id={subject}&purpose=newsletter&channel=email"
    return [
        ("GET", decision, None),
        ("GET", f"/v1/subjects/{subject}/consent", None),
        ("GET", f"/v1/subjects/{subject}/events", None),
        ("POST", f"/v1/subjects/{subject}/{command.route}", command.body),
    ]


async def test_postgres_outage_answers_503_and_the_projector_catches_up(
    real_servers: Servers, fault_seed: int, tmp_path: Path
) -> None:
    rng = random.Random(fault_seed)
    postgres = CrashablePostgres(tmp_path / "pg")
    api = projector = None
    try:
        servers = Servers(
            real_servers.kind,
            real_servers.bootstrap_servers,
            postgres.start(),
            real_servers.idempotence,
        )
        settings = await make_settings(servers)
        api = LedgerProcess("api", settings, tmp_path / "api.log")
        projector = LedgerProcess("projector", settings, tmp_path / "projector.log")
        api.start()
        projector.start()
        await api.ready()
        await projector.ready()

        tally = Tally()
        commands = make_commands(rng, COMMANDS, COMMANDS // 4, "pg")
        clients = asyncio.create_task(
            run_clients(api.url, commands, tally, concurrency=6, timeout_s=180)
        )

        async def acked() -> int:
            return len(tally.acked)

        answers: list[tuple[str, int, str]] = []
        refused_commands: list[str] = []
        schedule = []
        async with httpx.AsyncClient(base_url=api.url, headers=ADMIN_HEADERS, timeout=30) as probe:

            async def refused() -> bool:
                response = await probe.get("/v1/subjects/pg-s0/consent")
                return response.status_code == 503

            for n in range(OUTAGES):
                when = await kill_point(
                    rng,
                    acked,
                    delay_s=(0.2, 2.0),
                    steps=(5, 40),
                    limit=COMMANDS * (n + 1) // (OUTAGES + 1),
                    stop=clients.done,
                )
                if clients.done():
                    break
                await postgres.stop_immediately()
                schedule.append(f"stopped {when}, {len(tally.acked)} acknowledged")
                await wait_until(refused, 30, "the API to notice the outage")
                (command,) = make_commands(rng, 1, 1, f"pg-probe{n}", abandon_share=1)
                tally.sent[command.key] = command
                refused_commands.append(command.key)
                for method, path, body in probes(command):
                    response = await probe.request(
                        method, path, json=body, headers={"Idempotency-Key": command.key}
                    )
                    answers.append((path, response.status_code, response.headers["content-type"]))
                await asyncio.sleep(rng.uniform(0.5, 2.0))  # the outage itself
                await postgres.restart()
            await clients

            async def answers_again() -> bool:
                response = await probe.get("/v1/subjects/pg-s0/consent")
                return response.status_code == 200

            await wait_until(answers_again, 60, "the API to answer after the outage")
        context = f"seed {fault_seed}; " + "; ".join(schedule)
        assert len(schedule) == OUTAGES, f"the workload ended before every outage: {context}"
        wrong = [a for a in answers if a[1:] != (503, "application/problem+json")]
        assert not wrong, f"answers during the outage: {wrong}; {context}"
        assert api.running() and projector.running(), context
        assert "projection batch failed" in projector.output(), context
        logged = await check_ledger(servers, settings, tally, fault_seed)
        written = [r for r in logged if r.key in refused_commands]
        assert not written, f"a command refused with 503 was written: {written}; {context}"
    finally:
        for process in (api, projector):
            if process is not None:
                process.close()
        postgres.close()
