"""The projector process: the consumer loop (projections/runner.py) and, beside it, the state
feed, the dead-letter feed and the checkpointer, run until SIGINT or SIGTERM (wired by
services/bootstrap.py open_projector)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from dataclasses import dataclass

from projections.runner import Projector
from services.config import Settings
from services.projector.checkpointer import Checkpointer
from services.projector.dead_letter_feed import DeadLetterFeed
from services.projector.state_feed import StateFeed

log = logging.getLogger("consent_ledger")


@dataclass(frozen=True, slots=True)
class ProjectorProcess:
    settings: Settings
    projector: Projector
    state_feed: StateFeed
    dead_letter_feed: DeadLetterFeed
    checkpointer: Checkpointer


async def run_projector_process(process: ProjectorProcess) -> int:
    """Run every part until a signal; the checkpointer stops last, so its final checkpoints
    cover everything the projector applied."""
    settings, projector = process.settings, process.projector
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("projector consuming %s as group %s", settings.topic, settings.projector_group)
    # what start-up made lives as long as the process: the collector stops scanning it
    gc.freeze()
    feeding = asyncio.create_task(process.state_feed.run(stop))
    dead_lettering = asyncio.create_task(process.dead_letter_feed.run(stop))
    # set only once the projector has stopped: the final checkpoints cover all it applied
    projector_stopped = asyncio.Event()
    checkpointing = asyncio.create_task(process.checkpointer.run(projector_stopped))
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await projector.run(stop)
    finally:
        stop.set()
        projector_stopped.set()
        with contextlib.suppress(asyncio.CancelledError):
            await feeding
        with contextlib.suppress(asyncio.CancelledError):
            await dead_lettering
        with contextlib.suppress(asyncio.CancelledError):
            await checkpointing
    log.info("projector stopped after applying %d events", projector.applied)
    log.info(
        "state feed published %d subject states to %s",
        process.state_feed.published,
        settings.state_topic,
    )
    log.info(
        "published %d checkpoints to %s", process.checkpointer.published, settings.checkpoints_topic
    )
    return 0
