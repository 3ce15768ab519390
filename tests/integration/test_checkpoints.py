"""Checkpoints against the real servers: published per partition, read back from their topic,
recomputed from the event topic and from the journal, and still right after crashes."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from schemas.checkpoint_codec import LogCheckpoint
from services.bootstrap import publishing_sessions
from services.config import Settings
from services.ledger.topic import highwaters
from services.projector.checkpointer import Checkpointer
from services.proof.checkpoint_check import OK, by_partition, link_findings
from services.proof.checkpoint_verify import check_from_journal, check_from_topic, read_topic
from tests.conftest import make_settings, running_projector, wait_until
from tests.integration.chain_log import produce_events
from tests.integration.replay import caught_up, clean_replay, snapshot, start_projector_process
from tests.servers import Servers

pytestmark = pytest.mark.integration


def auditors_script() -> Callable[[str, dict[str, Any]], Awaitable[bool]]:
    """`holds` from the auditors' script (docs/auditors/tamper-evidence.md), run as written."""
    page = Path(__file__).resolve().parents[2] / "docs" / "auditors" / "tamper-evidence.md"
    text = page.read_text(encoding="utf-8")
    block = text.split("<!-- checkpoint-script -->\n```python\n", 1)[1].split("```", 1)[0]
    scope: dict[str, Any] = {}
    exec(compile(block, "tamper-evidence.md", "exec"), scope)
    holds: Callable[[str, dict[str, Any]], Awaitable[bool]] = scope["holds"]
    return holds


def run_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **settings.as_environment()}
    return subprocess.run(
        [sys.executable, "-m", "services.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def published(settings: Settings) -> dict[int, list[LogCheckpoint]]:
    found, undecodable = await read_topic(settings)
    assert undecodable == 0
    return by_partition(found, settings.topic)


async def assert_cover_the_log(settings: Settings) -> dict[int, list[LogCheckpoint]]:
    """Every partition's checkpoints run from offset 0 to its end without a gap, chained."""
    partitions = await published(settings)
    marks = await highwaters(settings.kafka, settings.topic)
    assert {p for p, end in marks.items() if end} == set(partitions)
    for partition, checkpoints in partitions.items():
        assert checkpoints[0].from_offset == 0
        assert checkpoints[0].previous_digest == "0" * 64
        assert checkpoints[-1].to_offset == marks[partition]
        assert sum(c.records for c in checkpoints) == marks[partition]
        assert link_findings(checkpoints) == []
    return partitions


async def test_checkpoints_are_published_and_recomputed_from_topic_and_journal(
    real_servers: Servers, tmp_path: Path
) -> None:
    settings = await make_settings(real_servers, LEDGER_CHECKPOINT_INTERVAL_S="1")
    db = await asyncpg.connect(settings.database_url)
    try:
        await published_and_recomputed(settings, db, tmp_path)
    finally:
        await db.close()


async def published_and_recomputed(
    settings: Settings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    stopped = asyncio.Event()
    checkpointer = Checkpointer(settings, sessions=publishing_sessions(settings))
    task = asyncio.create_task(checkpointer.run(stopped))
    try:
        await produce_events(settings, count=300, subjects=30, seed=3, garbage=2)
        async with running_projector(settings):
            await wait_until(lambda: caught_up(settings, db), 60, "the projector to catch up")

            async def periodic() -> bool:
                return checkpointer.published > 0

            await wait_until(periodic, 30, "a periodic checkpoint")
            await produce_events(settings, count=200, subjects=30, seed=4)
            await wait_until(lambda: caught_up(settings, db), 60, "the projector to catch up")
    finally:
        stopped.set()  # the clean stop cuts what is left
        await asyncio.wait_for(task, 30)
    partitions = await assert_cover_the_log(settings)
    assert any(len(c) > 1 for c in partitions.values())
    assert await db.fetchval("SELECT count(*) FROM checkpoint_outbox") == 0
    assert await db.fetchval("SELECT count(*) FROM duplicate_records") > 0
    for check in (check_from_topic, check_from_journal):
        findings = await check(settings, partitions)
        assert {f.status for f in findings} == {OK}
        assert len(findings) == sum(len(c) for c in partitions.values())

    done = await asyncio.to_thread(run_cli, settings, "checkpoint-verify")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "recomputed from the topic: every digest holds" in done.stdout
    kept = tmp_path / "kept.jsonl"
    done = await asyncio.to_thread(
        run_cli, settings, "checkpoint-verify", "--source", "journal", "--save", str(kept)
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = kept.read_text().splitlines()
    assert len(lines) >= sum(len(c) for c in partitions.values())
    # the auditors' script, which uses none of the ledger's code, agrees
    holds = auditors_script()
    bootstrap = settings.kafka_bootstrap_servers
    for line in lines:
        assert await holds(bootstrap, json.loads(line)), line
    forged_line = {**json.loads(lines[-1]), "digest": "e" * 64}
    assert not await holds(bootstrap, forged_line)
    one_more = {**json.loads(lines[-1]), "records": json.loads(lines[-1])["records"] + 1}
    assert not await holds(bootstrap, one_more)

    # a stored record changed in PostgreSQL: the journal no longer matches its checkpoint
    victim = await db.fetchrow(
        "SELECT event_id, log_partition, log_offset FROM journal ORDER BY log_offset LIMIT 1"
    )
    assert victim is not None
    await db.execute(
        "UPDATE journal SET record_value = set_byte(record_value, 12, get_byte(record_value, 12)"
        " # 1) WHERE event_id = $1",
        victim["event_id"],
    )
    broken = await asyncio.to_thread(
        run_cli, settings, "checkpoint-verify", "--source", "journal", "--checkpoints", str(kept)
    )
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert f"partition {victim['log_partition']}: " in broken.stdout
    assert "digest_mismatch" in broken.stdout
    # the topic still holds the original record
    intact = await asyncio.to_thread(run_cli, settings, "checkpoint-verify")
    assert intact.returncode == 0, intact.stdout + intact.stderr

    # a digest kept outside the ledger that the log no longer matches
    first = json.loads(lines[0])
    lines[0] = json.dumps({**first, "digest": "f" * 64})
    kept.write_text("\n".join(lines) + "\n")
    forged = await asyncio.to_thread(
        run_cli, settings, "checkpoint-verify", "--checkpoints", str(kept)
    )
    assert forged.returncode == 1, forged.stdout + forged.stderr
    kept.write_text("not json\n")
    unusable = await asyncio.to_thread(
        run_cli, settings, "checkpoint-verify", "--checkpoints", str(kept)
    )
    assert unusable.returncode == 2
    assert f"{kept}:1:" in unusable.stderr


async def test_killed_projectors_publish_only_right_checkpoints_and_equal_a_clean_replay(
    real_servers: Servers, tmp_path: Path
) -> None:
    settings = await make_settings(real_servers, LEDGER_CHECKPOINT_INTERVAL_S="1")
    settings = replace(settings, projector_batch=50)
    db = await asyncpg.connect(settings.database_url)
    try:
        sent = await produce_events(settings, count=3000, subjects=200, seed=7, garbage=3)
        rng = random.Random(11)
        for _ in range(4):
            process = start_projector_process(settings, str(tmp_path / "projector.log"))
            seen = await db.fetchval("SELECT count(*) FROM journal")
            target = seen + rng.randrange(300, 700)

            async def progressed(target: int = target) -> bool:
                return int(await db.fetchval("SELECT count(*) FROM journal")) >= min(target, 2900)

            try:
                await wait_until(progressed, 60, "the projector to make progress")
            finally:
                process.send_signal(signal.SIGKILL)
                process.wait()
        process = start_projector_process(settings, str(tmp_path / "projector.log"))
        try:
            await wait_until(lambda: caught_up(settings, db), 120, "the projector to catch up")
        finally:
            process.send_signal(signal.SIGTERM)
            assert process.wait(30) == 0
        live = await snapshot(db)
        assert sum(n for _, _, n, _ in live["digests"]) == sent
        assert live == await clean_replay(real_servers, settings)
        partitions = await assert_cover_the_log(settings)
        findings = await check_from_topic(settings, partitions)
        assert {f.status for f in findings} == {OK}
        assert {f.status for f in await check_from_journal(settings, partitions)} == {OK}
    finally:
        await db.close()
