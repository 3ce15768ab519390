"""The fault tests' client: commands sent with Idempotency-Keys and retried on 503, and its own
record of what it was told (the tally), which the log and projections are checked against.

Each command carries its Idempotency-Key in `source.collection_point`, so every event in the
log names the request it came from without asking the ledger.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from schemas import events as ev
from tests.conftest import ADMIN_HEADERS

#: the `source.system` of every command the fault suite sends
SYSTEM = "fault-suite"


@dataclass(frozen=True, slots=True)
class Command:
    """One request of the workload and the event types it appends, in log order."""

    key: str
    subject_id: str
    route: str
    body: dict[str, Any]
    types: tuple[str, ...]
    #: a client that stops after the first attempt without an answer (never retries)
    abandon: bool = False


#: (route, body, event types): one- and two-event commands, so a half-applied one would show
SHAPES: tuple[tuple[str, dict[str, Any], tuple[str, ...]], ...] = (
    ("consents", {"purpose": "newsletter", "channel": "email"}, (ev.CONSENT_GRANTED,)),
    (
        "consents",
        {"purpose": "newsletter", "channel": "email", "lift_objection": True},
        (ev.DIRECT_MARKETING_OBJECTION_LIFTED, ev.CONSENT_GRANTED),
    ),
    ("withdrawals", {"purpose": "newsletter"}, (ev.CONSENT_WITHDRAWN,)),
    ("objections", {"kind": "direct_marketing"}, (ev.DIRECT_MARKETING_OBJECTED,)),
)


def make_commands(
    rng: random.Random, count: int, subjects: int, run: str, abandon_share: float = 0.0
) -> list[Command]:
    """`count` commands over `subjects` subjects; `abandon_share` of them give up early."""
    out = []
    for i in range(count):
        route, body, types = rng.choice(SHAPES)
        key = f"{run}-{i}"
        source = {"system": SYSTEM, "collection_point": key}
        out.append(
            Command(
                key=key,
                subject_id=f"{run}-s{rng.randrange(subjects)}",
                route=route,
                body={**body, "source": source},
                types=types,
                abandon=rng.random() < abandon_share,
            )
        )
    return out


def event_ids_of(body: dict[str, Any]) -> tuple[str, ...]:
    """The event ids a 201 answer names, in log order."""
    if "events" in body:
        return tuple(str(e["event_id"]) for e in body["events"])
    return (str(body["event_id"]),)


@dataclass(slots=True)
class Tally:
    """What the client was told, per Idempotency-Key: the independent count."""

    sent: dict[str, Command] = field(default_factory=dict)
    #: key -> the event ids of its 201 answer, in log order
    acked: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: answers that are neither 201, 503 nor a dropped connection (each is a finding)
    unexpected: list[str] = field(default_factory=list)
    unavailable: int = 0
    dropped: int = 0
    in_flight: int = 0

    def record_ack(self, command: Command, body: dict[str, Any]) -> None:
        ids = event_ids_of(body)
        if len(ids) != len(command.types):
            self.unexpected.append(f"{command.key}: 201 names {len(ids)} events: {body}")
        earlier = self.acked.setdefault(command.key, ids)
        if earlier != ids:
            self.unexpected.append(f"{command.key}: acked {earlier}, then {ids}")


async def send_until_answered(
    client: httpx.AsyncClient, command: Command, tally: Tally, deadline: float
) -> None:
    """POST the command, retrying every 503 and dropped connection with the same key until a
    201, another answer, the deadline, or (for an abandoning client) the first failure."""
    tally.sent[command.key] = command
    url = f"/v1/subjects/{command.subject_id}/{command.route}"
    headers = {"Idempotency-Key": command.key}
    pause = 0.05
    while True:
        tally.in_flight += 1
        try:
            response = await client.post(url, json=command.body, headers=headers)
        except httpx.TransportError:
            tally.dropped += 1
        else:
            if response.status_code == 201:
                tally.record_ack(command, response.json())
                return
            if response.status_code != 503:
                tally.unexpected.append(
                    f"{command.key}: {response.status_code} {response.text[:300]}"
                )
                return
            tally.unavailable += 1
            if response.headers.get("content-type") != "application/problem+json":
                tally.unexpected.append(f"{command.key}: a 503 that is not problem+json")
        finally:
            tally.in_flight -= 1
        if command.abandon or time.monotonic() > deadline:
            return
        # a client's back-off, shorter than Retry-After so the test presses the ledger
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.4)


async def run_clients(
    base_url: str, commands: list[Command], tally: Tally, *, concurrency: int, timeout_s: float
) -> None:
    """`concurrency` clients share the commands; each command is retried until `timeout_s`."""
    queue: asyncio.Queue[Command] = asyncio.Queue()
    for command in commands:
        queue.put_nowait(command)
    deadline = time.monotonic() + timeout_s

    async def client_loop() -> None:
        async with httpx.AsyncClient(
            base_url=base_url, timeout=30, headers=ADMIN_HEADERS
        ) as client:
            while not queue.empty():
                await send_until_answered(client, queue.get_nowait(), tally, deadline)

    await asyncio.gather(*(client_loop() for _ in range(concurrency)))


async def resend_acked(base_url: str, tally: Tally, keys: list[str]) -> list[str]:
    """Send acknowledged commands again: each must answer 201 with the same event ids."""
    problems = []
    async with httpx.AsyncClient(base_url=base_url, timeout=30, headers=ADMIN_HEADERS) as client:
        for key in keys:
            command = tally.sent[key]
            response = await client.post(
                f"/v1/subjects/{command.subject_id}/{command.route}",
                json=command.body,
                headers={"Idempotency-Key": key},
            )
            if response.status_code != 201:
                problems.append(f"resent {key}: {response.status_code} {response.text[:200]}")
                continue
            if event_ids_of(response.json()) != tally.acked[key]:
                problems.append(f"resent {key}: other event ids {response.json()}")
    return problems
