"""Helpers for the rebuild tests: a log with every kind of record, the rows a rebuild must not
touch, and traffic that keeps the API busy while it runs."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx

from services.config import Settings
from services.ledger.kafka_clients import new_producer
from tests.integration.replay import produce_log
from tests.writer_macs import sealed

#: decision questions the traffic asks
QUESTION = {"purpose": "newsletter", "channel": "email"}


async def produce_full_log(settings: Settings, count: int, seed: int) -> int:
    """A random log (erasures, notices, identifiers, requests, retried duplicates) across the
    partitions, with one undecodable record in it; returns the records sent."""
    sent = await produce_log(settings, count=count // 2, subjects=150, seed=seed)
    producer = new_producer(settings.kafka, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            settings.topic,
            b"\x00not avro",
            key=b"rb-poison",
            headers=sealed(b"rb-poison", b"\x00not avro"),
        )
    finally:
        await producer.stop()
    return (
        sent + 1 + await produce_log(settings, count=count - count // 2, subjects=150, seed=~seed)
    )


async def kept_rows(conn: asyncpg.Connection) -> dict[str, list[tuple[Any, ...]]]:
    """The operational rows a rebuild never replaces, nor changes."""
    return {
        "subject_keys": [
            tuple(r) for r in await conn.fetch("SELECT * FROM subject_keys ORDER BY 1")
        ],
        "idempotency_keys": [
            tuple(r)
            for r in await conn.fetch("SELECT * FROM idempotency_keys ORDER BY key_hash, 1")
        ],
        "metric_histograms": [
            tuple(r) for r in await conn.fetch("SELECT * FROM metric_histograms ORDER BY 1, 2")
        ],
        "checkpoint_outbox": [
            tuple(r) for r in await conn.fetch("SELECT * FROM checkpoint_outbox ORDER BY 1")
        ],
    }


async def schemas_like(conn: asyncpg.Connection, prefix: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, $1) ORDER BY 1", prefix
    )
    return [r["nspname"] for r in rows]


@dataclass(slots=True)
class Traffic:
    """Commands and decisions sent while a rebuild runs, and every status answered."""

    statuses: list[tuple[str, int]] = field(default_factory=list)
    #: subject -> the token of its latest command
    tokens: dict[str, str] = field(default_factory=dict)
    #: subject -> whether its latest command granted the newsletter by e-mail
    granted: dict[str, bool] = field(default_factory=dict)

    def count(self) -> int:
        return len(self.statuses)

    def server_errors(self) -> list[tuple[str, int]]:
        return [(what, code) for what, code in self.statuses if code >= 500]


async def keep_busy(api: httpx.AsyncClient, stop: asyncio.Event, traffic: Traffic) -> None:
    """Grant and withdraw for a few subjects in turn, link an address now and then, and after
    each command ask the decision that must see it (min_token) and one that need not."""
    step = 0
    while not stop.is_set():
        subject = f"rb-live-{step % 12}"
        grant = not traffic.granted.get(subject, False)
        if step % 7 == 3:
            path, body = "identifiers", {"type": "email", "value": f"{subject}.{step}@example.com"}
        elif grant:
            path, body = "consents", dict(QUESTION)
        else:
            path, body = "withdrawals", {"purpose": "newsletter"}
        answer = await api.post(f"/v1/subjects/{subject}/{path}", json=body)
        traffic.statuses.append((path, answer.status_code))
        if answer.status_code == 201:
            traffic.tokens[subject] = answer.json()["token"]
            if path != "identifiers":
                traffic.granted[subject] = grant
        decision = await api.get(
            "/v1/decision",
            params={"subject_id": subject, **QUESTION, "min_token": traffic.tokens.get(subject, "")}
            if subject in traffic.tokens
            else {"subject_id": subject, **QUESTION},
        )
        traffic.statuses.append(("decision", decision.status_code))
        if decision.status_code == 200 and subject in traffic.granted:
            assert decision.json()["allowed"] is traffic.granted[subject], decision.text
        other = await api.get(
            "/v1/decision", params={"subject_id": f"subj-{step % 150}", **QUESTION}
        )
        traffic.statuses.append(("decision", other.status_code))
        step += 1
