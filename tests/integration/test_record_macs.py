"""Record MACs against the real broker and PostgreSQL (security review finding H2): a consent
produced straight to the event topic without a valid MAC is dead-lettered as
`unauthenticated-record` and never applied, chained or receipted; genuine commands apply; the
MAC survives backup/restore and restore-log; writer keys rotate."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import asyncpg
import pytest

from projections import dead_letters
from projections.dead_letters import UNAUTHENTICATED
from schemas.record_mac import DEAD_LETTERS, EVENTS, MAC_HEADER, Verdict
from services.config import Settings
from services.identity.secrets import new_key
from services.ledger.topic import ensure_topic
from services.operations.restore_log import restore_log
from tests.conftest import TEST_SECRETS, make_settings, running_api, running_projector, wait_until
from tests.integration.purpose_support import FILE_PURPOSES
from tests.integration.record_mac_support import (
    FORGERS,
    decide,
    grant,
    journaled,
    produce_consents,
    refusals,
)
from tests.integration.replay import answers_decisions, caught_up, clean_replay, snapshot
from tests.integration.test_dead_letters import running_dead_letter_feed
from tests.integration.topic_records import all_records, run_cli
from tests.servers import Servers
from tests.writer_macs import TEST_MACS

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("how", sorted(FORGERS))
async def test_a_forged_consent_is_dead_lettered_and_never_applied(
    settings: Settings, db: asyncpg.Connection, how: str
) -> None:
    forged_subject, genuine_subject = "forged-1", "genuine-1"
    async with (
        running_projector(settings),
        running_dead_letter_feed(settings),
        running_api(settings) as api,
    ):
        (forged,) = await produce_consents(settings, [forged_subject], FORGERS[how])
        genuine = await grant(api, genuine_subject)
        await wait_until(lambda: caught_up(settings, db), 60, "the projector to pass the forgery")
        await wait_until(lambda: answers_decisions(api), 60, "the projection to be current")

        # the genuine command is applied; the forged consent is not
        assert (await decide(api, genuine_subject, genuine["token"]))["allowed"] is True
        assert (await decide(api, forged_subject))["allowed"] is False
        receipt = await api.get(f"/v1/receipts/{forged.event_id}")
        assert receipt.status_code == 404, receipt.text
        assert (await api.get(f"/v1/receipts/{genuine['event_id']}")).status_code == 200
        chain = await api.get(f"/v1/subjects/{forged_subject}/verify")
        assert chain.status_code == 200 and chain.json()["events"] == 0

        async def published() -> bool:
            return await dead_letters.counts(db, settings.topic) == (1, 0)

        await wait_until(published, 60, "the dead letter to be published")

    assert await journaled(db, [forged_subject]) == 0
    assert (
        await db.fetchval("SELECT count(*) FROM journal WHERE event_id = $1", forged.event_id) == 0
    )
    assert (
        await db.fetchval(
            "SELECT count(*) FROM subject_facts WHERE subject_id = $1", forged_subject
        )
        == 0
    )
    assert await refusals(db, settings.topic) == {
        (forged.partition, forged.offset): UNAUTHENTICATED
    }
    error = await db.fetchval("SELECT error FROM rejected_records WHERE topic = $1", settings.topic)
    assert error.startswith(f"{UNAUTHENTICATED}: ")

    # the dead letter says why, machine-readably, and is itself MACed for the dead-letter topic
    (raw,) = await all_records(settings.kafka, settings.dead_letter_topic)
    letter = dead_letters.from_record(raw.key, raw.value, [(k, v or b"") for k, v in raw.headers])
    assert (letter.reason, letter.partition, letter.offset) == (
        UNAUTHENTICATED,
        forged.partition,
        forged.offset,
    )
    assert letter.key == forged_subject.encode()
    assert TEST_MACS.verify(DEAD_LETTERS, raw.key, raw.value, raw.headers) is Verdict.VALID
    assert TEST_MACS.verify(EVENTS, raw.key, raw.value, raw.headers) is not Verdict.VALID


async def test_rotated_writer_keys_keep_every_record_valid(
    settings: Settings, db: asyncpg.Connection, real_servers: Servers
) -> None:
    """Commands under w1, then under w2 (first in the ring, w1 kept): all apply; a ring
    without w1 no longer accepts the records w1 MACed."""
    w1 = TEST_SECRETS["LEDGER_WRITER_KEYS"]
    rotated = replace(settings, writer_keys=f"w2:{new_key()},{w1}")
    async with running_projector(settings), running_api(settings) as api:
        before = [await grant(api, f"rot-{n}") for n in range(3)]
    async with running_projector(rotated), running_api(rotated) as api:
        after = [await grant(api, f"rot-{n}") for n in range(3, 6)]
        await wait_until(lambda: caught_up(rotated, db), 60, "the projector to catch up")
        await wait_until(lambda: answers_decisions(api), 60, "the projection to be current")
        for n, granted in enumerate(before + after):
            assert (await decide(api, f"rot-{n}", granted["token"]))["allowed"] is True
    assert await refusals(db, settings.topic) == {}
    records = await all_records(settings.kafka, settings.topic)
    kids = [(dict(r.headers)[MAC_HEADER] or b"").split(b":")[1] for r in records]
    # the catalogue file's purposes were seeded under w1, by the first start
    assert sorted(kids) == [b"w1"] * (3 + FILE_PURPOSES) + [b"w2"] * 3

    # a projector whose ring lost w1 refuses exactly the records w1 MACed
    w2_only = replace(rotated, writer_keys=rotated.writer_keys.split(",")[0])
    fresh = await make_settings(real_servers)
    replay_settings = replace(fresh, topic=settings.topic, writer_keys=w2_only.writer_keys)
    conn = await asyncpg.connect(fresh.database_url)
    try:
        async with running_projector(replay_settings):
            await wait_until(lambda: caught_up(replay_settings, conn), 60, "the replay")
        assert await journaled(conn, [f"rot-{n}" for n in range(6)]) == 3
        assert set((await refusals(conn, settings.topic)).values()) == {UNAUTHENTICATED}
        assert len(await refusals(conn, settings.topic)) == 3 + FILE_PURPOSES
    finally:
        await conn.close()


async def test_backup_and_restore_keep_the_mac_and_the_restored_log_applies(
    settings: Settings, db: asyncpg.Connection, real_servers: Servers, tmp_path: Path
) -> None:
    async with running_projector(settings), running_api(settings) as api:
        granted = [await grant(api, f"bk-{n}") for n in range(4)]
    (forged,) = await produce_consents(settings, ["bk-forged"], FORGERS["no MAC"])
    original = await all_records(settings.kafka, settings.topic)
    path = tmp_path / "ledger.avro"
    done = run_cli(settings, "backup", str(path), "--no-progress")
    assert done.returncode == 0, done.stdout + done.stderr

    fresh = await make_settings(real_servers)
    done = run_cli(fresh, "restore", str(path), "--no-progress")
    assert done.returncode == 0, done.stdout + done.stderr
    restored = await all_records(fresh.kafka, fresh.topic)
    assert [(r.partition, r.offset, r.headers) for r in restored] == [
        (r.partition, r.offset, r.headers) for r in original
    ]
    conn = await asyncpg.connect(fresh.database_url)
    try:
        async with running_projector(fresh), running_api(fresh) as api:
            await wait_until(lambda: caught_up(fresh, conn), 60, "the replay of the restore")
            await wait_until(lambda: answers_decisions(api), 60, "the projection to be current")
            for n in range(len(granted)):
                assert (await decide(api, f"bk-{n}"))["allowed"] is True
            assert (await decide(api, "bk-forged"))["allowed"] is False
        # the forgery in the backup stays a forgery: restore MACs nothing
        assert await refusals(conn, fresh.topic) == {
            (forged.partition, forged.offset): UNAUTHENTICATED
        }
        assert await journaled(conn, [f"bk-{n}" for n in range(4)]) == 4
    finally:
        await conn.close()


async def test_restore_log_keeps_each_records_mac_and_a_replay_applies_the_same(
    settings: Settings, db: asyncpg.Connection, real_servers: Servers
) -> None:
    async with running_projector(settings), running_api(settings) as api:
        for n in range(6):
            await grant(api, f"rl-{n % 3}")  # repeats of a subject
        (forged,) = await produce_consents(settings, ["rl-forged"], FORGERS["no MAC"])
        await wait_until(lambda: caught_up(settings, db), 60, "the projector to catch up")
    original = await all_records(settings.kafka, settings.topic)
    stored = await db.fetch("SELECT record_mac FROM journal")
    # six grants and the catalogue file's purposes, seeded at start
    assert len(stored) == 6 + FILE_PURPOSES
    assert all(r["record_mac"].startswith("v1:w1:") for r in stored)

    lost = replace(settings, topic=f"{settings.topic}.restored")
    await ensure_topic(lost)
    result = await restore_log(lost, db, source_topic=settings.topic)
    assert result.records == len(original)
    restored = await all_records(lost.kafka, lost.topic)
    # every record comes back with the headers it had: genuine MACs, and no MAC on the forgery
    assert [(r.partition, r.offset, r.key, r.value, r.headers) for r in restored] == [
        (r.partition, r.offset, r.key, r.value, r.headers) for r in original
    ]
    assert await refusals(db, lost.topic) == {(forged.partition, forged.offset): UNAUTHENTICATED}
    # a replay of the restored topic into a fresh database verifies every MAC again and applies
    # exactly what the ledger applied (the journal keeps each MAC), the forgery still refused
    replayed = await clean_replay(real_servers, lost)
    live = await snapshot(db)
    assert replayed["journal"] == live["journal"] and len(live["journal"]) == 6 + FILE_PURPOSES
    assert replayed["facts"] == live["facts"]
