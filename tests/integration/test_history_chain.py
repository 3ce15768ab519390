"""The journal's hash chain against the real servers: the API and `consent-ledger verify` find
rows edited straight in PostgreSQL; a restore keeps the chains and positions; the migration
chains old rows.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from projections import log_digest, offsets
from projections.hash_chain import GENESIS, subject_chain
from projections.log_records import Record
from projections.migrate import migration_files
from projections.runner import apply_batch
from schemas.codec import default_codec
from services.config import Settings
from services.ledger.topic import ensure_topic
from services.operations.restore_log import restore_log
from tests.conftest import make_settings, running_projector, wait_until
from tests.integration.chain_log import produce_events, simple_event
from tests.integration.replay import caught_up, snapshot
from tests.servers import Servers, with_database
from tests.writer_macs import TEST_MACS, sealed_record

pytestmark = pytest.mark.integration


async def post(api: httpx.AsyncClient, subject: str, path: str, body: dict[str, Any]) -> Any:
    response = await api.post(f"/v1/subjects/{subject}/{path}", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def history_of(api: httpx.AsyncClient) -> str:
    """Write a small history for two subjects; returns the last token."""
    await post(api, "chain-1", "consents", {"purpose": "newsletter", "channel": "email"})
    await post(api, "chain-2", "consents", {"purpose": "research"})
    await post(api, "chain-1", "objections", {"kind": "direct_marketing"})
    await post(api, "chain-2", "withdrawals", {"purpose": "research"})
    await post(api, "chain-2", "consents", {"purpose": "newsletter", "channel": "email"})
    last = await post(api, "chain-1", "withdrawals", {"purpose": "newsletter"})
    return str(last["token"])


async def verify(api: httpx.AsyncClient, subject: str, **params: str) -> dict[str, Any]:
    response = await api.get(f"/v1/subjects/{subject}/verify", params=params)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def run_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **settings.as_environment()}
    return subprocess.run(
        [sys.executable, "-m", "services.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def entries(db: asyncpg.Connection, subject: str) -> list[asyncpg.Record]:
    return await db.fetch(
        "SELECT event_id, log_partition, log_offset, record_value, chain_hash FROM journal"
        " WHERE subject_id = $1 ORDER BY log_partition, log_offset",
        subject,
    )


async def test_the_api_verifies_a_subject_and_finds_edited_rows(
    api: httpx.AsyncClient, settings: Settings, db: asyncpg.Connection
) -> None:
    token = await history_of(api)
    answer = await verify(api, "chain-1", min_token=token)
    rows = await entries(db, "chain-1")
    assert answer == {
        "subject_id": "chain-1",
        "events": 3,
        "valid": True,
        "first_broken": None,
        "head": bytes(rows[-1]["chain_hash"]).hex(),
    }
    # the stored hashes are the chain over the stored bytes, in log order
    values = [bytes(r["record_value"]) for r in rows]
    assert [bytes(r["chain_hash"]) for r in rows] == subject_chain(values)
    assert (await verify(api, "nobody-yet")) == {
        "subject_id": "nobody-yet",
        "events": 0,
        "valid": True,
        "first_broken": None,
        "head": None,
    }

    # the payload an auditor reads in the history
    second = rows[1]["event_id"]
    original = await db.fetchval("SELECT payload::text FROM journal WHERE event_id = $1", second)
    await db.execute(
        "UPDATE journal SET payload = jsonb_set(payload::jsonb, '{channel}', '\"sms\"')::json"
        " WHERE event_id = $1",
        second,
    )
    broken = (await verify(api, "chain-1"))["first_broken"]
    assert (broken["event_id"], broken["offset"], broken["reason"]) == (
        str(second),
        rows[1]["log_offset"],
        "payload_mismatch",
    )
    await db.execute("UPDATE journal SET payload = $2::json WHERE event_id = $1", second, original)
    assert (await verify(api, "chain-1"))["valid"] is True

    # one bit of the stored record
    first = rows[0]["event_id"]
    await db.execute(
        "UPDATE journal SET record_value = set_byte(record_value, 30,"
        " get_byte(record_value, 30) # 1) WHERE event_id = $1",
        first,
    )
    answer = await verify(api, "chain-1")
    assert answer["valid"] is False
    assert (answer["first_broken"]["event_id"], answer["first_broken"]["reason"]) == (
        str(first),
        "hash_mismatch",
    )
    assert answer["events"] == 3

    # two of chain-2's events swapped in the log order
    other = await entries(db, "chain-2")
    a, b = other[0], other[1]
    await db.execute(
        "UPDATE journal SET log_offset = CASE event_id WHEN $1 THEN $4::bigint ELSE $3::bigint"
        " END WHERE event_id IN ($1, $2)",
        a["event_id"],
        b["event_id"],
        a["log_offset"],
        b["log_offset"],
    )
    swapped = (await verify(api, "chain-2"))["first_broken"]
    assert (swapped["event_id"], swapped["offset"], swapped["reason"]) == (
        str(b["event_id"]),
        a["log_offset"],
        "hash_mismatch",
    )


async def test_by_identifier_finds_the_subject_to_verify(api: httpx.AsyncClient) -> None:
    linked = await api.post(
        "/v1/subjects/chain-9/identifiers", json={"type": "email", "value": "chain9@example.com"}
    )
    assert linked.status_code == 201, linked.text
    token = linked.json()["token"]
    answer = await verify(api, "by-identifier", email="Chain9@example.com", min_token=token)
    assert (answer["subject_id"], answer["events"], answer["valid"]) == ("chain-9", 1, True)
    unknown = await api.get("/v1/subjects/by-identifier/verify", params={"email": "no@example.com"})
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"
    bad = await api.get("/v1/subjects/chain-9/verify", params={"limit": "3"})
    assert bad.status_code in (400, 422)


async def test_the_cli_verifies_every_subject_and_reports_the_first_broken_link(
    api: httpx.AsyncClient, settings: Settings, db: asyncpg.Connection
) -> None:
    token = await history_of(api)
    await verify(api, "chain-2", min_token=token)  # projected
    done = await asyncio.to_thread(run_cli, settings, "verify", "--no-progress")
    assert done.returncode == 0, done.stdout + done.stderr
    # the catalogue file's 11 purposes, seeded at start, are chains of their own (purpose/<id>)
    assert (
        "17 events in 13 chains (2 subjects, 11 purposes, 0 privacy notices): every chain is intact"
    ) in done.stdout

    victim = (await entries(db, "chain-2"))[2]
    await db.execute(
        "UPDATE journal SET record_value = record_value || '\\x00'::bytea WHERE event_id = $1",
        victim["event_id"],
    )
    broken = await asyncio.to_thread(run_cli, settings, "verify", "--no-progress")
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert "BROKEN: 1 of 13 chains (2 subjects, 11 purposes" in broken.stdout
    assert (
        f"first broken link: subject chain-2, event {victim['event_id']}"
        f" (partition {victim['log_partition']}, offset {victim['log_offset']}): hash_mismatch"
    ) in broken.stdout

    unreachable = replace(settings, database_url="postgresql://nobody@127.0.0.1:1/none")
    failed = await asyncio.to_thread(run_cli, unreachable, "verify")
    assert failed.returncode == 2


async def test_a_restore_keeps_every_chain_position_and_digest(
    settings: Settings, db: asyncpg.Connection
) -> None:
    await produce_events(settings, count=200, subjects=20, seed=21)
    async with running_projector(settings):
        await wait_until(lambda: caught_up(settings, db), 60, "the projector to catch up")
    before = {
        r["event_id"]: (r["chain_hash"], r["log_partition"], r["log_offset"])
        for r in await db.fetch(
            "SELECT event_id, chain_hash, log_partition, log_offset FROM journal"
        )
    }
    digests = await log_digest.states(db, settings.topic)
    # the topic is lost: here, a new empty topic stands for it
    empty = replace(settings, topic=f"{settings.topic}.restored")
    await ensure_topic(empty)
    restored = await restore_log(empty, db, source_topic=settings.topic)
    assert restored.sources["journal"] == len(before)
    assert restored.sources["duplicate"] > 0 and "placeholder" not in restored.sources
    after = {
        r["event_id"]: (r["chain_hash"], r["log_partition"], r["log_offset"])
        for r in await db.fetch(
            "SELECT event_id, chain_hash, log_partition, log_offset FROM journal"
        )
    }
    assert after == before
    done = await asyncio.to_thread(run_cli, empty, "verify", "--no-progress")
    assert done.returncode == 0, done.stdout + done.stderr

    # every record is back at its offset, so the digests go on over the restored log
    assert await log_digest.states(db, empty.topic) == digests
    assert not await log_digest.states(db, settings.topic)

    # the projector goes on after the restored records, chaining onto the same heads
    await produce_events(empty, count=60, subjects=20, seed=22)
    async with running_projector(empty):
        await wait_until(lambda: caught_up(empty, db), 60, "the projector to catch up")
    done = await asyncio.to_thread(run_cli, empty, "verify", "--no-progress")
    assert done.returncode == 0, done.stdout + done.stderr


async def test_the_migration_chains_the_rows_journaled_before_it(settings: Settings) -> None:
    admin = await asyncpg.connect(settings.database_url)
    name = "m" + uuid.uuid4().hex[:12]
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    dsn = with_database(settings.database_url, name)
    conn = await asyncpg.connect(dsn)
    try:
        files = dict(migration_files())
        for file_name in sorted(files):
            if file_name < "0006":
                await conn.execute(files[file_name])
        rows = [(uuid.UUID(int=i + 1), f"s-{i % 3}", 1, i, bytes([i]) * (i + 1)) for i in range(10)]
        await conn.executemany(
            "INSERT INTO journal (event_id, subject_id, event_type, log_partition, log_offset,"
            " occurred_at, recorded_at, payload, record_value)"
            " VALUES ($1, $2, 'ConsentGranted', $3, $4, now(), now(), '{}', $5)",
            rows,
        )
        await conn.execute(
            "INSERT INTO projector_offsets (topic, log_partition, next_offset)"
            " VALUES ('consent.events', 1, 10)"
        )
        await conn.execute(files["0006_chain.sql"])
        for subject in ("s-0", "s-1", "s-2"):
            stored = await conn.fetch(
                "SELECT record_value, chain_hash FROM journal WHERE subject_id = $1"
                " ORDER BY log_partition, log_offset",
                subject,
            )
            values = [bytes(r["record_value"]) for r in stored]
            assert [bytes(r["chain_hash"]) for r in stored] == subject_chain(values)
        (state,) = await log_digest.states(conn, "consent.events")
        assert (state.from_offset, state.next_offset, state.record_count) == (10, 10, 0)
        assert state.digest == state.previous_digest == GENESIS
    finally:
        await conn.close()


def in_memory_log(count: int, seed: int) -> list[Record]:
    """Records of two partitions as a consumer would see them, some events twice."""
    rng = random.Random(seed)
    codec = default_codec()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    out: list[Record] = []
    next_offset = {0: 0, 1: 0}
    for i in range(count):
        subject = f"subj-{rng.randrange(12)}"
        partition = int(subject.removeprefix("subj-")) % 2
        event = simple_event(rng, subject, start + timedelta(seconds=i))
        for _ in range(2 if rng.random() < 0.05 else 1):
            out.append(
                sealed_record(
                    partition, next_offset[partition], subject.encode(), codec.encode(event)
                )
            )
            next_offset[partition] += 1
    return out


async def test_two_projectors_applying_one_partition_at_once_take_turns(
    real_servers: Servers,
) -> None:
    log = in_memory_log(400, seed=5)
    codec = default_codec()
    alone = await make_settings(real_servers)
    together = await make_settings(real_servers)
    together = replace(together, topic=alone.topic)
    conn = await asyncpg.connect(alone.database_url)
    a = await asyncpg.connect(together.database_url)
    b = await asyncpg.connect(together.database_url)
    try:
        await apply_batch(conn, codec, alone.topic, log, TEST_MACS)
        await apply_batch(a, codec, alone.topic, log[:100], TEST_MACS)
        # each round, both start where the stored offsets stand and stop at different places
        for end_a, end_b in ((120, 160), (230, 200), (10**6, 10**6)):
            stored = await offsets.load(a, alone.topic)

            def batch(end: int, stored: dict[int, int] = stored) -> list[Record]:
                return [r for r in log if stored.get(r.partition, 0) <= r.offset < end]

            await asyncio.gather(
                apply_batch(a, codec, alone.topic, batch(end_a), TEST_MACS),
                apply_batch(b, codec, alone.topic, batch(end_b), TEST_MACS),
            )
        assert await snapshot(a) == await snapshot(conn)
        assert (await snapshot(a))["digests"]
    finally:
        for c in (conn, a, b):
            await c.close()
