"""A generated event log for the hash-chain and checkpoint tests: a few event types, some
records sent twice (retries) and, on request, undecodable records."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas import events as ev
from schemas.codec import default_codec, kafka_headers
from schemas.events import Event, Source
from services.config import Settings
from services.ledger.kafka_clients import new_producer
from tests.writer_macs import sealed


def simple_event(rng: random.Random, subject: str, at: datetime) -> Event:
    choices: list[tuple[str, dict[str, Any]]] = [
        (ev.CONSENT_GRANTED, {"purpose": "newsletter", "channel": "email"}),
        (ev.CONSENT_GRANTED, {"purpose": "research", "channel": None}),
        (ev.CONSENT_WITHDRAWN, {"purpose": "newsletter", "channel": None}),
        (ev.DIRECT_MARKETING_OBJECTED, {"channel": None}),
    ]
    kind, data = rng.choice(choices)
    return Event(kind, uuid.UUID(int=rng.getrandbits(128)), subject, at, at, Source(), data=data)


async def produce_events(
    settings: Settings, count: int, subjects: int, seed: int, *, garbage: int = 0
) -> int:
    """Append `count` events (2% of them twice) and `garbage` undecodable records; returns
    how many records were sent."""
    rng = random.Random(seed)
    codec = default_codec()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    producer = new_producer(settings.kafka, acks="all", linger_ms=5)
    await producer.start()
    sent = 0
    try:
        futures = []
        for i in range(count):
            subject = f"subj-{rng.randrange(subjects)}"
            event = simple_event(rng, subject, start + timedelta(seconds=i))
            for _ in range(2 if rng.random() < 0.02 else 1):
                value = codec.encode(event)
                futures.append(
                    await producer.send(
                        settings.topic,
                        value,
                        key=subject.encode(),
                        headers=sealed(subject.encode(), value, kafka_headers(event)),
                    )
                )
                sent += 1
        for i in range(garbage):  # written by the ledger (MACed), but undecodable
            poison = b"\x00garbage%d" % i
            futures.append(
                await producer.send(
                    settings.topic, poison, key=b"poison", headers=sealed(b"poison", poison)
                )
            )
            sent += 1
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return sent
