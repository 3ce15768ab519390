"""Kill the projector at any point, or run two of them: the projections equal a clean replay."""

from __future__ import annotations

import random
import re
import signal
from dataclasses import replace
from pathlib import Path

import asyncpg
import pytest

from services.config import Settings
from services.ledger.kafka_clients import new_producer
from tests.conftest import wait_until
from tests.integration.replay import (
    caught_up,
    clean_replay,
    fold_of_journal,
    own_facts,
    produce_log,
    snapshot,
    start_projector_process,
    state_by_subject,
)
from tests.servers import Servers

pytestmark = pytest.mark.integration


async def journal_count(conn: asyncpg.Connection) -> int:
    count: int = await conn.fetchval("SELECT count(*) FROM journal")
    return count


async def test_projector_killed_mid_batch_restarts_to_a_clean_replay(
    real_servers: Servers, settings: Settings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    settings = replace(settings, projector_batch=50)
    sent = await produce_log(settings, count=3000, subjects=200, seed=7)
    assert sent >= 3000
    rng = random.Random(11)
    kills = 0
    for _ in range(4):
        process = start_projector_process(settings, str(tmp_path / "projector.log"))
        seen = await journal_count(db)
        target = seen + rng.randrange(50, 400)

        async def progressed(target: int = min(target, 3000)) -> bool:
            # a cheap poll, so the kill lands close to the target, mid-stream
            return await journal_count(db) >= target

        try:
            await wait_until(progressed, 60, "the projector to make progress")
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait()
        kills += 1
        if await journal_count(db) >= 3000:
            break
    assert kills >= 2, "the log was too small to kill the projector mid-way"

    process = start_projector_process(settings, str(tmp_path / "projector.log"))
    try:
        await wait_until(lambda: caught_up(settings, db), 120, "the projector to catch up")
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    live = await snapshot(db)
    assert live == await clean_replay(real_servers, settings)
    assert len(live["journal"]) == 3000  # duplicates sent as retries were applied once
    assert own_facts(await state_by_subject(db)) == await fold_of_journal(db)


async def test_two_projector_processes_share_the_partitions(
    real_servers: Servers, settings: Settings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    processes = [start_projector_process(settings, str(p)) for p in logs]
    try:

        async def both_assigned() -> bool:
            return all(_assigned(p) for p in logs)

        await wait_until(both_assigned, 60, "both projectors to get partitions")
        await produce_log(settings, count=1500, subjects=150, seed=3)
        await wait_until(lambda: caught_up(settings, db), 120, "the projectors to catch up")
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            assert process.wait(30) == 0
    live = await snapshot(db)
    assert len(live["journal"]) == 1500
    assert live == await clean_replay(real_servers, settings)
    assert own_facts(await state_by_subject(db)) == await fold_of_journal(db)


def _assigned(log: Path) -> list[int]:
    """Partitions named in the process's latest 'partitions assigned' line."""
    text = log.read_text() if log.exists() else ""
    found = re.findall(r"partitions assigned: \[([0-9, ]*)\]", text)
    return [int(p) for p in found[-1].split(",") if p.strip()] if found else []


async def test_an_undecodable_record_is_kept_and_the_projector_goes_on(
    settings: Settings, db: asyncpg.Connection
) -> None:

    from tests.conftest import running_projector
    from tests.writer_macs import sealed

    producer = new_producer(settings.kafka, acks="all")
    await producer.start()
    try:
        bad = await producer.send_and_wait(
            settings.topic,
            b"\x00garbage",
            key=b"poison-1",
            headers=sealed(b"poison-1", b"\x00garbage"),
        )
        unknown = b"\xc3\x01" + b"\xff" * 8 + b"\x00"
        await producer.send_and_wait(
            settings.topic, unknown, key=b"poison-1", headers=sealed(b"poison-1", unknown)
        )
    finally:
        await producer.stop()
    await produce_log(settings, count=20, subjects=3, seed=5)
    async with running_projector(settings):
        await wait_until(lambda: caught_up(settings, db), 60, "the projector to pass the poison")
    rows = await db.fetch(
        "SELECT log_partition, log_offset, error, record_value FROM rejected_records"
        " ORDER BY log_offset"
    )
    assert [(r["log_partition"], r["log_offset"]) for r in rows] == [
        (bad.partition, bad.offset),
        (bad.partition, bad.offset + 1),
    ]
    assert bytes(rows[0]["record_value"]) == b"\x00garbage"
    assert "magic" in rows[0]["error"] and "fingerprint" in rows[1]["error"]
    assert await journal_count(db) == 20
