"""Helpers for the record MAC tests: consents produced straight to the event topic with the
repository's schemas, as someone with access to the broker but without a writer key would, and
what the ledger made of them."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx

from schemas import events as ev
from schemas.codec import default_codec, kafka_headers
from schemas.events import Event, Source
from schemas.record_mac import DEAD_LETTERS, EVENTS, Header, RecordMacs
from services.config import Settings
from services.identity.secrets import new_key, parse_key_ring
from services.ledger.publisher import make_producer
from tests.writer_macs import TEST_MACS

QUESTION = {"purpose": "newsletter", "channel": "email"}

#: how a forger makes the headers of a consent: (key, value, routing headers) -> headers
Forge = Callable[[bytes, bytes, Sequence[Header]], list[Header]]


def writer_macs_of(text: str) -> RecordMacs:
    """The record MACs of a writer key ring given as LEDGER_WRITER_KEYS text."""
    ring = parse_key_ring("LEDGER_WRITER_KEYS", text)
    return RecordMacs(ring.keys, ring.current_id)


#: the ledger's key id with another key; a key id the ledger does not have
OTHER_W1 = writer_macs_of(f"w1:{new_key()}")
UNKNOWN_KID = writer_macs_of(f"w9:{new_key()}")

FORGERS: dict[str, Forge] = {
    "no MAC": lambda key, value, headers: list(headers),
    "a MAC under another key": lambda key, value, headers: OTHER_W1.seal(
        EVENTS, key, value, headers
    ),
    "a MAC under an unknown key id": lambda key, value, headers: UNKNOWN_KID.seal(
        EVENTS, key, value, headers
    ),
    # a genuine MAC the ledger made for a dead letter with this key and value
    "a dead letter's MAC": lambda key, value, headers: TEST_MACS.seal(
        DEAD_LETTERS, key, value, headers
    ),
    "a malformed MAC header": lambda key, value, headers: [
        *headers,
        ("ledger_mac", b"v1:w1:not-a-mac"),
    ],
}


@dataclass(frozen=True, slots=True)
class Produced:
    event_id: uuid.UUID
    partition: int
    offset: int


def consent(subject: str) -> Event:
    now = datetime.now(UTC)
    return Event(
        ev.CONSENT_GRANTED,
        uuid.uuid4(),
        subject,
        now,
        now,
        Source("double_opt_in", "crm", "signup"),
        data={**QUESTION, "expires_at": None},
    )


async def produce_consents(
    settings: Settings, subjects: Sequence[str], forge: Forge
) -> list[Produced]:
    """A `ConsentGranted` per subject straight to the event topic, keyed and with the routing
    headers as the ledger writes them, the headers made by `forge`."""
    codec = default_codec()
    producer = make_producer(
        settings.kafka,
        idempotence=settings.kafka_idempotence,
        timeout_ms=settings.produce_timeout_ms,
    )
    await producer.start()
    out: list[Produced] = []
    try:
        for subject in subjects:
            event = consent(subject)
            key, value = subject.encode("utf-8"), codec.encode(event)
            meta = await producer.send_and_wait(
                settings.topic, value, key=key, headers=forge(key, value, kafka_headers(event))
            )
            out.append(Produced(event.event_id, meta.partition, meta.offset))
    finally:
        await producer.stop()
    return out


async def decide(api: httpx.AsyncClient, subject: str, token: str | None = None) -> Any:
    params = {"subject_id": subject, **QUESTION, **({"min_token": token} if token else {})}
    answer = await api.get("/v1/decision", params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def grant(api: httpx.AsyncClient, subject: str) -> dict[str, Any]:
    answer = await api.post(f"/v1/subjects/{subject}/consents", json=QUESTION)
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def refusals(conn: asyncpg.Connection, topic: str) -> dict[tuple[int, int], str]:
    """Every refused record of `topic`: (partition, offset) -> reason."""
    rows = await conn.fetch(
        "SELECT log_partition, log_offset, reason FROM rejected_records WHERE topic = $1", topic
    )
    return {(r["log_partition"], r["log_offset"]): r["reason"] for r in rows}


async def journaled(conn: asyncpg.Connection, subjects: Sequence[str]) -> int:
    found = await conn.fetchval(
        "SELECT count(*) FROM journal WHERE subject_id = ANY($1::text[])", list(subjects)
    )
    return int(found)
