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
from uuid import UUID

import asyncpg

from projections import webhook_deliveries
from services.config import Settings
from services.webhooks import erasure_capture
from services.webhooks.deliverer import Deliverer
from services.webhooks.fanout import FanoutReader
from services.webhooks.sending import Sender

log = logging.getLogger("consent_ledger")

#: seconds between retention runs
RETENTION_EVERY_S = 3600.0


@dataclass(frozen=True, slots=True)
class DispatcherProcess:
    settings: Settings
    pool: asyncpg.Pool
    reader: FanoutReader
    deliverer: Deliverer
    sender: Sender


async def retention_pass(
    pool: asyncpg.Connection | asyncpg.Pool, retention_days: int
) -> tuple[int, list[UUID]]:
    """Delete succeeded deliveries older than `retention_days`, and the erasure captures no
    delivery will open (erasure_capture.forget_orphans, the one rule for them); what went."""
    gone = await webhook_deliveries.purge_succeeded(pool, retention_days)
    orphans = await erasure_capture.forget_orphans(pool)
    return gone, orphans


async def keep_retention(process: DispatcherProcess, stop: asyncio.Event) -> None:
    """retention_pass at start and every hour, whether or not events arrive."""
    days = process.settings.webhook_delivery_retention_days
    while not stop.is_set():
        try:
            gone, orphans = await retention_pass(process.pool, days)
            if gone or orphans:
                log.info(
                    "webhook retention: %d succeeded deliveries, %d orphaned erasure captures",
                    gone,
                    len(orphans),
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
