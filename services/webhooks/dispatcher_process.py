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
from datetime import timedelta
from uuid import UUID

import asyncpg

from projections import webhook_retention
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


@dataclass(frozen=True, slots=True)
class Retention:
    """What one retention pass deleted."""

    succeeded: int
    parked: int
    #: deliveries of erased subjects whose proof is purged
    purged_subjects: int
    #: the erasure captures forgotten (erasure_capture.forget_orphans), by event id
    captures: list[UUID]


async def retention_pass(pool: asyncpg.Connection | asyncpg.Pool, settings: Settings) -> Retention:
    """Delete succeeded deliveries past LEDGER_WEBHOOK_DELIVERY_RETENTION_DAYS, parked ones past
    LEDGER_WEBHOOK_PARKED_RETENTION_DAYS, those of erased subjects whose proof is purged, and
    the erasure captures no delivery will open (erasure_capture.forget_orphans, the one rule
    for them, capped at the retry window)."""
    return Retention(
        await webhook_retention.purge_succeeded(pool, settings.webhook_delivery_retention_days),
        await webhook_retention.purge_parked(pool, settings.webhook_parked_retention_days),
        await webhook_retention.purge_purged_subjects(pool),
        await erasure_capture.forget_orphans(pool, timedelta(hours=settings.webhook_retry_hours)),
    )


async def keep_retention(process: DispatcherProcess, stop: asyncio.Event) -> None:
    """retention_pass at start and every hour, whether or not events arrive."""
    while not stop.is_set():
        try:
            done = await retention_pass(process.pool, process.settings)
            if done.succeeded or done.parked or done.purged_subjects or done.captures:
                log.info(
                    "webhook retention: %d succeeded, %d parked, %d of purged subjects'"
                    " deliveries; %d erasure captures no delivery will open",
                    done.succeeded,
                    done.parked,
                    done.purged_subjects,
                    len(done.captures),
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
