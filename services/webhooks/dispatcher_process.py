"""The webhook dispatcher process (`consent-ledger webhooks-dispatcher`): fan-out from the event
topic, the deliveries' workers and the hourly retention, run until SIGINT or SIGTERM (wired by
services/bootstrap.py open_dispatcher).

Design: docs/developers/design/webhooks.md
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass

import asyncpg

from projections import webhook_deliveries
from services.config import Settings
from services.webhooks.deliverer import Deliverer
from services.webhooks.fanout import FanoutReader
from services.webhooks.sending import Sender

log = logging.getLogger("consent_ledger")

#: seconds between retention runs
RETENTION_EVERY_S = 3600.0
#: how long an erasure capture waits for its SubjectErased to reach the log
CAPTURE_GRACE_HOURS = 24


@dataclass(frozen=True, slots=True)
class DispatcherProcess:
    settings: Settings
    pool: asyncpg.Pool
    reader: FanoutReader
    deliverer: Deliverer
    sender: Sender


async def keep_retention(process: DispatcherProcess, stop: asyncio.Event) -> None:
    """Delete succeeded deliveries past LEDGER_WEBHOOK_DELIVERY_RETENTION_DAYS and stale
    erasure captures, at start and every hour."""
    days = process.settings.webhook_delivery_retention_days
    while not stop.is_set():
        try:
            gone = await webhook_deliveries.purge_succeeded(process.pool, days)
            stale = await webhook_deliveries.purge_captures(process.pool, CAPTURE_GRACE_HOURS)
            if gone or stale:
                log.info(
                    "webhook retention: %d succeeded deliveries, %d stale erasure captures",
                    gone,
                    stale,
                )
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            log.warning("webhook retention failed (%s); trying again later", exc)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(RETENTION_EVERY_S):
                await stop.wait()


async def run_dispatcher_process(process: DispatcherProcess) -> int:
    """Run fan-out, delivery and retention until a signal; in-flight attempts finish first."""
    settings = process.settings
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("webhook dispatcher consuming %s as group %s", settings.topic, settings.webhook_group)
    delivering = asyncio.create_task(process.deliverer.run(stop))
    retention = asyncio.create_task(keep_retention(process, stop))
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await process.reader.run(stop)
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await delivering
        with contextlib.suppress(asyncio.CancelledError):
            await retention
        await process.sender.close()
        await process.pool.close()
    log.info(
        "webhook dispatcher stopped: %d deliveries created, %d attempts recorded",
        process.reader.created,
        process.deliverer.sent,
    )
    return 0
