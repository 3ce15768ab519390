"""The delivery side of the dispatcher: a worker per subscription with work due, sending up to
LEDGER_WEBHOOK_CONCURRENCY deliveries at once (each to another subject: a subject's next one
waits for its earlier one), so a slow or dead receiver only ever holds up its own queue.

Across dispatcher processes a subscription is drained by one at a time: its worker holds a
session advisory lock on the dispatcher's lock connection.

Design: docs/developers/design/webhooks.md
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg

from projections import webhook_deliveries as deliveries
from projections.webhook_deliveries import Due, Target
from schemas.events import SUBJECT_ERASED
from services.rules.webhook_delivery import next_attempt_at
from services.webhooks.delivery_identifiers import DeliveryIdentifiers
from services.webhooks.erasure_capture import Identifier
from services.webhooks.sending import Sender
from services.webhooks.signing import webhook_headers

log = logging.getLogger(__name__)

#: the secrets that sign a subscription's deliveries now (one, two while a secret rotates)
SigningSecrets = Callable[[UUID], Awaitable[list[str]]]
#: deletes an erasure's captured identifiers once its deliveries are settled
ForgetCapture = Callable[[UUID], Awaitable[None]]
#: how long a delivery waiting for the projector (include_identifiers) is put back
PROJECTION_WAIT_S = 0.2
#: the longest the loop sleeps before looking for due work it was not woken for (a
#: redelivery asked through the API, another dispatcher's subscriptions freed)
POLL_S = 1.0
#: advisory lock namespace of the subscriptions' workers ("WH")
LOCK_SPACE = 0x5748


def delivery_id_header(delivery: Due) -> str:
    """webhook-id: the event and the subscription, stable across retries (no '.', which the
    signed content reserves)."""
    return f"{delivery.event_id}_{delivery.subscription_id}"


def body_of(
    delivery: Due, identifiers: list[Identifier] | None, *, withheld: bool = False
) -> bytes:
    """The JSON body; with `withheld`, `data.identifiers_withheld: true` says the ledger no
    longer holds the addresses (not that the subject had none: that is `identifiers: []`)."""
    payload = delivery.payload
    if identifiers is not None:
        payload = {**payload, "data": {**payload["data"], "identifiers": identifiers}}
    elif withheld:
        payload = {**payload, "data": {**payload["data"], "identifiers_withheld": True}}
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True, slots=True)
class DelivererOptions:
    concurrency: int
    retry_window: timedelta


class Deliverer:
    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        connect: Callable[[], Awaitable[asyncpg.Connection]],
        sender: Sender,
        secrets: SigningSecrets,
        identifiers: DeliveryIdentifiers,
        forget_capture: ForgetCapture,
        options: DelivererOptions,
    ) -> None:
        self.pool = pool
        self.connect = connect
        self.sender = sender
        self.secrets = secrets
        self.identifiers = identifiers
        self.forget_capture = forget_capture
        self.options = options
        #: set when there may be new work: fan-out created deliveries, a worker finished
        self.wake = asyncio.Event()
        self.workers: dict[UUID, asyncio.Task[None]] = {}
        self.lock_conn: asyncpg.Connection | None = None
        self.lock_guard = asyncio.Lock()
        self.sent = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Start workers for subscriptions with due work until `stop`; on a database failure
        start again (pending deliveries stay pending: nothing is lost)."""
        while not stop.is_set():
            try:
                self.lock_conn = await self.connect()
                await self._loop(stop)
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
                log.error("webhook delivery loop failed (%s); starting again", exc)
                await _sleep(stop, 1.0)
            finally:
                await self._stop_workers()
                if self.lock_conn is not None:
                    with contextlib.suppress(Exception):
                        await self.lock_conn.close(timeout=2)

    async def _loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.wake.clear()
            for sid in await deliveries.busy_subscriptions(self.pool):
                if sid not in self.workers:
                    task = asyncio.create_task(self._drain(sid, stop))
                    self.workers[sid] = task
                    task.add_done_callback(functools.partial(self._finished, sid))
            due_at = await deliveries.next_due_at(self.pool)
            wait = POLL_S
            if due_at is not None:
                wait = min(wait, max(0.0, (due_at - datetime.now(UTC)).total_seconds()))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await _first(stop.wait(), self.wake.wait())

    def _finished(self, sid: UUID, task: asyncio.Task[None]) -> None:
        self.workers.pop(sid, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("webhook worker of %s failed: %s", sid, task.exception())
        self.wake.set()

    async def _stop_workers(self) -> None:
        """Let every worker finish its attempts in flight (each bounded by the timeout)."""
        running = list(self.workers.values())
        if running:
            await asyncio.gather(*running, return_exceptions=True)

    async def _lock(self, sql: str, sid: UUID) -> bool:
        assert self.lock_conn is not None
        async with self.lock_guard:
            return bool(await self.lock_conn.fetchval(sql, LOCK_SPACE, str(sid)))

    async def _drain(self, sid: UUID, stop: asyncio.Event) -> None:
        if not await self._lock("SELECT pg_try_advisory_lock($1, hashtext($2))", sid):
            return  # another dispatcher drains it
        try:
            while not stop.is_set():
                target = await deliveries.target(self.pool, sid)
                if target is None or not target.enabled:
                    return
                batch = await deliveries.due(self.pool, sid, self.options.concurrency)
                if not batch:
                    return
                secrets = await self.secrets(sid)
                await asyncio.gather(*(self._deliver(target, secrets, d) for d in batch))
        finally:
            with contextlib.suppress(Exception):
                await self._lock("SELECT pg_advisory_unlock($1, hashtext($2))", sid)

    async def _deliver(self, target: Target, secrets: list[str], delivery: Due) -> None:
        carried: list[Identifier] | None = None
        if target.include_identifiers:
            if not await self.identifiers.projected(delivery):
                await deliveries.defer(self.pool, delivery.id, PROJECTION_WAIT_S)
                return
            carried = await self.identifiers.of(delivery)
        body = body_of(delivery, carried, withheld=target.include_identifiers and carried is None)
        headers = webhook_headers(secrets, delivery_id_header(delivery), int(time.time()), body)
        attempt = await self.sender.post(target.url, headers, body)
        next_at = (
            None
            if attempt.outcome == deliveries.SUCCEEDED
            else next_attempt_at(
                failed_attempts=delivery.retry_attempts + 1,
                failed_at=attempt.started_at + timedelta(milliseconds=attempt.duration_ms),
                window_from=delivery.retry_from,
                window=self.options.retry_window,
                draw=random.random(),
            )
        )
        recorded = await deliveries.record(self.pool, delivery, attempt, next_at)
        if not recorded:
            return
        self.sent += 1
        if attempt.outcome != deliveries.SUCCEEDED:
            log.info(
                "webhook delivery %s attempt %d: %s%s",
                delivery.id,
                delivery.attempts + 1,
                attempt.error,
                "" if next_at else "; parked",
            )
        settled = attempt.outcome == deliveries.SUCCEEDED or next_at is None
        if (
            delivery.event_type == SUBJECT_ERASED
            and settled
            and await deliveries.event_settled(self.pool, delivery.event_id)
        ):
            await self.forget_capture(delivery.event_id)


async def _first(*waits: Awaitable[object]) -> None:
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await stop.wait()
