"""Helpers shared by the erasure integration tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from aiokafka import TopicPartition

from services.config import Settings
from services.importing.run import ImportOptions, run_import
from services.ledger.kafka_clients import new_consumer
from services.ledger.topic import highwaters

ADDRESS = "Ada.Erased@Example.com"


async def topic_events(settings: Settings, topic: str | None = None) -> list[tuple[bytes, Any]]:
    """Every (key, value) of a topic, read straight from the broker from the beginning."""
    name = topic or settings.topic
    ends = await highwaters(settings.kafka, name)
    consumer = new_consumer(settings.kafka, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(name, p) for p in ends]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        out: list[tuple[bytes, Any]] = []
        while [tp for tp in tps if await consumer.position(tp) < ends[tp.partition]]:
            for records in (await consumer.getmany(*tps, timeout_ms=200)).values():
                out += [(r.key or b"", r.value) for r in records]
        return out
    finally:
        await consumer.stop()


async def settled(api: httpx.AsyncClient, subject: str, token: str) -> None:
    answer = await api.get(f"/v1/subjects/{subject}/consent", params={"min_token": token})
    assert answer.status_code == 200, answer.text


async def decide_email(api: httpx.AsyncClient, email: str, token: str | None = None) -> Any:
    params = {"email": email, "purpose": "newsletter", "channel": "email"}
    answer = await api.get(
        "/v1/decision", params={**params, **({"min_token": token} if token else {})}
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


async def import_address(
    settings: Settings, tmp_path: Path, name: str, status: str = "subscribed"
) -> tuple[int, str]:
    path = tmp_path / name
    when = "2024-05-04T10:00:00Z"
    path.write_text(f"email,status,opted_in_at,changed_at\n{ADDRESS},{status},{when},{when}\n")
    code = await run_import(
        settings, ImportOptions(path, "generic", "newsletter", "email", progress=False)
    )
    rejects = path.with_name(path.name + ".rejects.csv")
    return code, rejects.read_text() if rejects.exists() else ""
