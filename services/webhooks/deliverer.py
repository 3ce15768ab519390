"""The delivery side of the dispatcher: a worker per subscription with work due, keeping up to
LEDGER_WEBHOOK_CONCURRENCY deliveries in flight (each of another subject: a subject's next one
waits for its earlier one), refilled as each finishes, so a slow or dead receiver only ever
holds up its own queue. Deliveries are claimed for a lease (projections/webhook_queue.py), so
several dispatchers share a subscription's work and one that dies frees its claims.

Design: docs/developers/design/webhooks.md
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from uuid import UUID

import asyncpg

from projections import webhook_deliveries as deliveries
from projections import webhook_queue as queue
from projections.webhook_deliveries import FAILED, SUCCEEDED, Attempt, Target
from projections.webhook_queue import Due
from schemas.events import SUBJECT_ERASED
from services.rules.webhook_delivery import next_attempt_at
from services.webhooks.delivery_identifiers import DeliveryIdentifiers
from services.webhooks.erasure_capture import Identifier
from services.webhooks.sending import ERROR_CHARS, Sender
from services.webhooks.signing import webhook_headers

log = logging.getLogger(__name__)

#: the secrets that sign a subscription's deliveries now (one, two while a secret rotates)
SigningSecrets = Callable[[UUID], Awaitable[list[str]]]
#: deletes an erasure's captured identifiers once its deliveries are settled
ForgetCapture = Callable[[UUID], Awaitable[None]]
#: how long a delivery waiting for the projector (include_identifiers) is put back
PROJECTION_WAIT_S = 0.2
#: the longest the loop sleeps before looking for due work it was not woken for (a
#: redelivery asked through the API, another dispatcher's claims run out)
POLL_S = 1.0
#: a claim's lease beyond an attempt's own bound (preparing it and sending it, each at most
#: LEDGER_WEBHOOK_TIMEOUT_S): room to record it before another dispatcher may claim it again
LEASE_MARGIN_S = 30.0


def delivery_id_header(delivery: Due) -> str:
    """webhook-id: the event and the subscription, stable across retries (no '.', which the
    signed content reserves)."""
    return f"{delivery.event_id}_{delivery.subscription_id}"


#: in place of `identifiers`: an erasure whose captured addresses the ledger does not hold (never
#: captured, or forgotten before a redelivery), which is not the same as a subject without any
WITHHELD: Final = "identifiers_withheld"


def body_of(
    delivery: Due, identifiers: list[Identifier] | None, *, withheld: bool = False
) -> bytes:
    """The JSON posted: the stored payload, with `data.identifiers` for a subscription with
    include_identifiers (None: one without), or `data.identifiers_withheld` when `withheld`."""
    payload = delivery.payload
    if withheld:
        payload = {**payload, "data": {**payload["data"], WITHHELD: True}}
    elif identifiers is not None:
        payload = {**payload, "data": {**payload["data"], "identifiers": identifiers}}
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True, slots=True)
class DelivererOptions:
    concurrency: int
    retry_window: timedelta


@dataclass(frozen=True, slots=True)
class _Worker:
    task: asyncio.Task[bool]
    #: set when the subscription has new due work the worker may have free slots for
    poke: asyncio.Event


class Deliverer:
    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        sender: Sender,
        secrets: SigningSecrets,
        identifiers: DeliveryIdentifiers,
        forget_capture: ForgetCapture,
        options: DelivererOptions,
    ) -> None:
        self.pool = pool
        self.sender = sender
        self.secrets = secrets
        self.identifiers = identifiers
        self.forget_capture = forget_capture
        self.options = options
        self.lease_s = 2 * sender.timeout_s + LEASE_MARGIN_S
        #: set when there may be new work: fan-out created deliveries, a worker made progress
        self.wake = asyncio.Event()
        self.workers: dict[UUID, _Worker] = {}
        #: attempts recorded
        self.sent = 0
        #: queries for due work (ready subscriptions, the next due time, claims): one round per
        #: wake-up, so it counts how often the loop looked, busy or idle
        self.due_queries = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Start workers for subscriptions with due work until `stop`, then let them finish
        their attempts in flight; on a database failure look again (claims not recorded run
        out and are sent again: nothing is lost)."""
        try:
            while not stop.is_set():
                try:
                    await self._loop(stop)
                except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
                    log.error("webhook delivery loop failed (%s); starting again", exc)
                    await _sleep(stop, 1.0)
        finally:
            running = [w.task for w in self.workers.values()]
            if running:
                await asyncio.gather(*running, return_exceptions=True)

    async def _loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.wake.clear()
            self.due_queries += 2
            for sid in await queue.ready_subscriptions(self.pool):
                worker = self.workers.get(sid)
                if worker is None:
                    self._start(sid, stop)
                else:
                    worker.poke.set()
            ahead = await queue.seconds_to_next_due(self.pool)
            await self.sender.close_idle()
            wait = POLL_S if ahead is None else min(POLL_S, ahead)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await _first([stop.wait(), self.wake.wait()])

    def _start(self, sid: UUID, stop: asyncio.Event) -> None:
        poke = asyncio.Event()
        task = asyncio.create_task(self._drain(sid, stop, poke))
        self.workers[sid] = _Worker(task, poke)
        task.add_done_callback(lambda t: self._finished(sid, t))

    def _finished(self, sid: UUID, task: asyncio.Task[bool]) -> None:
        self.workers.pop(sid, None)
        if task.cancelled():
            return
        if task.exception() is not None:
            log.error("webhook worker of %s failed: %s", sid, task.exception())
        elif task.result():  # it made progress: what it released may be due elsewhere too
            self.wake.set()

    async def _drain(self, sid: UUID, stop: asyncio.Event, poke: asyncio.Event) -> bool:
        """Keep the subscription's slots filled with claimed deliveries until none is due and
        none is in flight; answers whether it recorded anything. Returns only once every
        attempt it started has finished."""
        in_flight: set[asyncio.Task[bool]] = set()
        recorded: list[bool] = []

        def settled(task: asyncio.Task[bool]) -> None:
            in_flight.discard(task)
            recorded.append(not task.cancelled() and task.exception() is None and task.result())

        try:
            while not stop.is_set():
                poke.clear()
                free = self.options.concurrency - len(in_flight)
                if free > 0:
                    target = await deliveries.target(self.pool, sid)
                    if target is None or not target.enabled:
                        break
                    self.due_queries += 1
                    for delivery in await queue.claim(self.pool, sid, free, self.lease_s):
                        task = asyncio.create_task(self._deliver(target, delivery))
                        in_flight.add(task)
                        task.add_done_callback(settled)
                if not in_flight:
                    break
                await _first([stop.wait(), poke.wait()], in_flight)
        finally:
            if in_flight:
                await asyncio.gather(*in_flight, return_exceptions=True)
        return any(recorded)

    async def _deliver(self, target: Target, delivery: Due) -> bool:
        """One attempt, recorded whatever went wrong in it; answers whether it was recorded.
        Only a failure to record leaves the claim to run out (the delivery is sent again)."""
        try:
            attempt = await self._attempt(target, delivery)
            return attempt is not None and await self._record(delivery, attempt)
        except Exception:
            log.exception("webhook delivery %s not recorded; sent again later", delivery.id)
            return False

    async def _attempt(self, target: Target, delivery: Due) -> Attempt | None:
        """Build, sign and send; anything raised on the way is a failed attempt. None when the
        delivery waits for the projector (given back unsent)."""
        started_at, started = datetime.now(UTC), time.perf_counter()
        try:
            async with asyncio.timeout(self.sender.timeout_s):
                carried: list[Identifier] | None = None
                withheld = False
                if target.include_identifiers:
                    if not await self.identifiers.projected(delivery):
                        await queue.defer(self.pool, delivery, PROJECTION_WAIT_S)
                        return None
                    carried = await self.identifiers.of(delivery)
                    withheld = carried is None
                secrets = await self.secrets(delivery.subscription_id)
                body = body_of(delivery, carried, withheld=withheld)
                headers = webhook_headers(
                    secrets, delivery_id_header(delivery), int(time.time()), body
                )
        except Exception as exc:
            ms = round((time.perf_counter() - started) * 1000)
            error = f"preparing the delivery failed: {type(exc).__name__}: {exc}"
            return Attempt(started_at, ms, None, FAILED, error[:ERROR_CHARS])
        return await self.sender.post(delivery.subscription_id, target.url, headers, body)

    async def _record(self, delivery: Due, attempt: Attempt) -> bool:
        next_at = (
            None
            if attempt.outcome == SUCCEEDED
            else next_attempt_at(
                failed_attempts=delivery.retry_attempts + 1,
                failed_at=attempt.started_at + timedelta(milliseconds=attempt.duration_ms),
                window_from=delivery.retry_from,
                window=self.options.retry_window,
                draw=random.random(),
            )
        )
        if not await queue.record(self.pool, delivery, attempt, next_at):
            log.warning("webhook delivery %s was no longer ours to record", delivery.id)
            return False
        self.sent += 1
        if attempt.outcome != SUCCEEDED:
            log.info(
                "webhook delivery %s attempt %d: %s%s",
                delivery.id,
                delivery.attempts + 1,
                attempt.error,
                "" if next_at else "; parked",
            )
        settled = attempt.outcome == SUCCEEDED or next_at is None
        if (
            delivery.event_type == SUBJECT_ERASED
            and settled
            and await queue.event_settled(self.pool, delivery.event_id)
        ):
            await self.forget_capture(delivery.event_id)
        return True


async def _first(
    waits: Sequence[Coroutine[Any, Any, object]], tasks: Iterable[asyncio.Task[bool]] = ()
) -> None:
    """Wait until one of `waits` or `tasks` is done (the waits left are cancelled)."""
    made = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait([*made, *tasks], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in made:
            t.cancel()


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await stop.wait()
