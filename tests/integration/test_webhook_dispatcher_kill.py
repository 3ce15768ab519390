"""`consent-ledger webhooks-dispatcher` killed (SIGKILL) mid-delivery loses nothing and sends
again at most what was in flight: every event reaches the receiver, and the repeats are no
more than the attempts the killed process had not recorded."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid

import asyncpg
import pytest

from services.identity import webhook_secrets
from services.webhooks.signing import new_secret
from tests.conftest import make_settings, wait_until
from tests.integration.webhook_support import Received, append, receiving, subscribe, withdrawal
from tests.servers import Servers

pytestmark = pytest.mark.integration


def start(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "services.cli.main", "webhooks-dispatcher"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def test_a_killed_dispatcher_loses_nothing(real_servers: Servers) -> None:
    settings = await make_settings(
        real_servers,
        LEDGER_WEBHOOK_GROUP=f"kill-{uuid.uuid4().hex[:8]}",
        LEDGER_WEBHOOK_ALLOW_LOOPBACK="true",
        LEDGER_WEBHOOK_CONCURRENCY="4",
    )
    env = {**os.environ, **settings.as_environment()}
    secret = new_secret()
    hold, unstuck = asyncio.Event(), asyncio.Event()

    async def answer(_: Received) -> int:
        if hold.is_set():
            await unstuck.wait()  # in flight while the process is killed
            return 503  # to nobody: the process that asked is gone
        return 200

    events = [withdrawal(f"k-{i % 10}") for i in range(200)]
    conn = await asyncpg.connect(settings.database_url)
    try:
        async with receiving(answer) as receiver:
            sid = await subscribe(conn, receiver.url)
            await webhook_secrets.issue(conn, settings.secrets().master, sid, secret)
            await append(settings, events)
            first = start(env)
            try:

                async def some_acknowledged() -> bool:
                    return len(receiver.acknowledged) >= 40

                await wait_until(some_acknowledged, 60, "some deliveries")
                hold.set()  # the requests now in flight are never answered

                async def in_flight() -> bool:
                    return len(receiver.received) > len(receiver.acknowledged)

                await wait_until(in_flight, 30, "a delivery in flight")
            finally:
                first.send_signal(signal.SIGKILL)
                await asyncio.to_thread(first.wait, 30)
            unrecorded = len(receiver.received) - await conn.fetchval(
                "SELECT count(*) FROM webhook_attempts"
            )
            hold.clear()
            second = start(env)
            try:

                async def all_succeeded() -> bool:
                    done: int = await conn.fetchval(
                        "SELECT count(*) FROM webhook_deliveries WHERE status = 'succeeded'"
                    )
                    return done == len(events)

                await wait_until(all_succeeded, 120, "every delivery to succeed")
            finally:
                unstuck.set()
                second.send_signal(signal.SIGTERM)
                assert await asyncio.to_thread(second.wait, 30) == 0
    finally:
        await conn.close()
    ids = [r.webhook_id for r in receiver.received]
    assert {i.split("_")[0] for i in ids} == {str(e.event_id) for e in events}  # nothing lost
    repeats = len(ids) - len(set(ids))
    assert 1 <= repeats <= unrecorded <= 4  # only what was in flight, at most the concurrency
