"""`consent-ledger rebuild` against the real servers: the rebuilt projections equal the live ones
and a clean replay, the API reads them right after the switch (its prepared statements
included) and answers throughout, the live projector goes on, and the switch can be undone."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from projections.rebuild_schema import RebuildError
from projections.rebuild_tables import PREVIOUS_PREFIX, REBUILD_SCHEMA, qualified
from schemas.events import NOT_ABOUT_A_SUBJECT
from services.config import Settings
from services.operations.rebuild import RebuildOptions, rebuild
from services.proof.retention import purge_due
from services.rules.catalogue import load_catalogue
from tests.conftest import make_settings, running_api, running_projector, wait_until
from tests.integration.rebuild_support import (
    QUESTION,
    Traffic,
    keep_busy,
    kept_rows,
    produce_full_log,
    schemas_like,
)
from tests.integration.replay import (
    answers_decisions,
    caught_up,
    clean_replay,
    snapshot,
    start_projector_process,
)
from tests.servers import Servers

pytestmark = pytest.mark.integration

FACTS_OF = "SELECT count(*) FROM subject_facts WHERE subject_id = $1"


async def decide(api: httpx.AsyncClient, subject: str, token: str | None = None) -> Any:
    params = {"subject_id": subject, **QUESTION, **({"min_token": token} if token else {})}
    answer = await api.get("/v1/decision", params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def grant(api: httpx.AsyncClient, subject: str) -> str:
    answer = await api.post(f"/v1/subjects/{subject}/consents", json=QUESTION)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["token"])


async def test_a_rebuild_replaces_damaged_projections_and_the_api_reads_them_at_once(
    real_servers: Servers, settings: Settings, db: asyncpg.Connection
) -> None:
    await produce_full_log(settings, 3000, seed=21)
    async with running_projector(settings), running_api(settings) as api:
        token = await grant(api, "rb-1")
        await wait_until(lambda: caught_up(settings, db), 120, "the projector to catch up")
        await wait_until(lambda: answers_decisions(api), 60, "the projection to be current")
        before, kept = await snapshot(db), await kept_rows(db)
        assert await db.fetchval("SELECT count(*) FROM rejected_records") == 1
        assert await db.fetchval("SELECT count(*) FROM duplicate_records") > 0
        assert await db.fetchval("SELECT count(*) FROM erasures") > 0
        # every pooled connection has prepared the decision's statements
        answers = await asyncio.gather(*(decide(api, "rb-1", token) for _ in range(20)))
        assert {a["reason"] for a in answers} == {"consent_given"}
        cached = await asyncpg.connect(settings.database_url)
        try:
            prepared = await cached.prepare(FACTS_OF)
            # a bug in a projection: the subject's facts are lost
            await db.execute("DELETE FROM subject_facts WHERE subject_id = 'rb-1'")
            assert (await decide(api, "rb-1"))["allowed"] is False
            assert await cached.fetchval(FACTS_OF, "rb-1") == 0
            assert await prepared.fetchval("rb-1") == 0

            seen: list[tuple[int, int]] = []
            outcome = await rebuild(
                settings,
                RebuildOptions(progress=False),
                lambda done, total: seen.append((done, total)),
            )

            assert (await decide(api, "rb-1"))["reason"] == "consent_given"
            assert await cached.fetchval(FACTS_OF, "rb-1") == 1
            assert await prepared.fetchval("rb-1") == 1
        finally:
            await cached.close()
        assert await snapshot(db) == before
        assert await kept_rows(db) == kept
        assert outcome.replayed == sum(n for _, _, n in before["offsets"])
        assert outcome.digests_differ == [] and outcome.digests_agree == len(before["digests"])
        assert seen and seen[-1][0] == seen[-1][1] == outcome.replayed
        assert [done for done, _ in seen] == sorted(done for done, _ in seen)
        # the replaced tables are kept as they were, damage included
        assert await schemas_like(db, PREVIOUS_PREFIX) == [outcome.previous]
        assert await schemas_like(db, REBUILD_SCHEMA) == []
        kept_facts = qualified(outcome.previous, "subject_facts")
        assert (
            await db.fetchval(f"SELECT count(*) FROM {kept_facts} WHERE subject_id = 'rb-1'") == 0
        )
        assert await db.fetchval(f"SELECT count(*) FROM {kept_facts}") == len(before["facts"]) - 1

        # the live projector goes on in the switched-in tables
        later = await api.post("/v1/subjects/rb-1/withdrawals", json={"purpose": "newsletter"})
        assert later.status_code == 201
        assert (await decide(api, "rb-1", later.json()["token"]))["reason"] == "consent_withdrawn"
        await wait_until(lambda: caught_up(settings, db), 60, "the projector to catch up")
    assert await snapshot(db) == await clean_replay(real_servers, settings)


async def test_a_rebuild_under_load_switches_while_the_api_answers(
    real_servers: Servers, tmp_path: Path
) -> None:
    # the projector process with its state feed and a checkpoint cut every second
    settings = await make_settings(real_servers, LEDGER_CHECKPOINT_INTERVAL_S="1")
    db = await asyncpg.connect(settings.database_url)
    log_path = tmp_path / "projector.log"
    projector = start_projector_process(settings, str(log_path))
    try:
        await produce_full_log(settings, 3000, seed=5)
        async with running_api(settings) as api:
            await wait_until(lambda: caught_up(settings, db), 120, "the projector to catch up")
            await wait_until(lambda: answers_decisions(api), 60, "the projection to be current")
            traffic, stop = Traffic(), asyncio.Event()
            busy = asyncio.create_task(keep_busy(api, stop, traffic))
            try:
                await wait_until(_at_least(traffic, 10), 60, "the traffic to start")
                at_start = traffic.count()
                outcome = await rebuild(settings, RebuildOptions(progress=False))
                during = traffic.count() - at_start
                await wait_until(_at_least(traffic, traffic.count() + 10), 60, "traffic after it")
            finally:
                stop.set()
                await busy
            assert during > 0, "no request was answered while the rebuild ran"
            assert traffic.server_errors() == []
            assert outcome.replayed >= 3001 and outcome.digests_differ == []

            for subject, token in traffic.tokens.items():
                answer = await decide(api, subject, token)
                if traffic.granted.get(subject):
                    assert answer["reason"] == "consent_given"
                verified = await api.get(f"/v1/subjects/{subject}/verify")
                assert verified.status_code == 200 and verified.json()["valid"] is True
            await wait_until(lambda: caught_up(settings, db), 60, "the projector to catch up")
        projector.send_signal(signal.SIGTERM)
        assert projector.wait(30) == 0
        live, replayed = await snapshot(db), await clean_replay(real_servers, settings)
        # the API made data keys for the addresses it linked; a replay only shreds keys
        live["shredded"] = [row for row in live["shredded"] if row[1]]
        assert live == replayed
        answered = sum(1 for what, code in traffic.statuses if what != "decision" and code == 201)
        journaled = await db.fetchval(
            "SELECT count(*) FROM journal WHERE subject_id LIKE 'rb-live-%'"
        )
        assert journaled == answered
    finally:
        if projector.poll() is None:
            projector.kill()
            projector.wait()
        await db.close()
    assert "Traceback" not in log_path.read_text()
    # the checkpoints published before and after the switch make one chain that holds
    code, out = await run_cli(settings, "checkpoint-verify")
    assert code == 0 and "every digest holds" in out, out


def _at_least(traffic: Traffic, count: int) -> Any:
    async def check() -> bool:
        return traffic.count() >= count

    return check


async def test_rollback_switches_back_to_the_replaced_tables_brought_up_to_date(
    real_servers: Servers, settings: Settings, db: asyncpg.Connection
) -> None:
    await produce_full_log(settings, 600, seed=8)
    async with running_projector(settings), running_api(settings) as api:
        await grant(api, "rb-2")
        await wait_until(lambda: caught_up(settings, db), 60, "the projector to catch up")
        # the staleness guard answers once the projector has reported every partition current
        await wait_until(lambda: answers_decisions(api), 60, "the projection to be current")
        await db.execute("UPDATE subject_facts SET scope_b = 'damaged' WHERE subject_id = 'rb-2'")
        code, out = await run_cli(settings, "rebuild", "--no-progress")
        assert code == 0, out
        [first] = await schemas_like(db, PREVIOUS_PREFIX)
        assert f"kept in schema {first}" in out and "events/s" in out
        assert (await decide(api, "rb-2"))["allowed"] is True
        token = await grant(api, "rb-3")
        await decide(api, "rb-3", token)
        # as if the state feed had published everything
        await db.execute("DELETE FROM state_feed_outbox")
        await db.execute(f"DELETE FROM {qualified(first, 'state_feed_outbox')}")

        back = await rebuild(settings, RebuildOptions(rollback=True, progress=False))

        assert back.rollback and back.replayed >= 1 and back.digests_differ == []
        # the damage is back, and what was applied since the rebuild is there too
        assert (await decide(api, "rb-2"))["allowed"] is False
        assert (await decide(api, "rb-3"))["reason"] == "consent_given"
        assert await schemas_like(db, PREVIOUS_PREFIX) == [back.previous]
        assert back.previous > first
        token = await grant(api, "rb-4")
        assert (await decide(api, "rb-4", token))["reason"] == "consent_given"
        await wait_until(lambda: caught_up(settings, db), 60, "the projector to catch up")
        # the feed publishes every subject's state again after a rollback
        queued = await db.fetch("SELECT subject_id FROM state_feed_outbox ORDER BY 1")
        # every subject: notices and purposes (notice/<version>, purpose/<id>) are none
        subjects = await db.fetch(
            "SELECT DISTINCT subject_id FROM journal WHERE NOT event_type = ANY($1::text[])"
            " ORDER BY 1",
            list(NOT_ABOUT_A_SUBJECT),
        )
        assert queued == subjects
    replayed = await clean_replay(real_servers, settings)
    live = await snapshot(db)
    assert {k: v for k, v in live.items() if k != "facts"} == {
        k: v for k, v in replayed.items() if k != "facts"
    }
    assert len(live["facts"]) == len(replayed["facts"])

    code, out = await run_cli(settings, "rebuild", "--drop-previous")
    assert (code, out) == (0, f"rebuild: dropped 1 schema(s) of replaced tables: {back.previous}\n")
    assert await schemas_like(db, PREVIOUS_PREFIX) == []
    with pytest.raises(RebuildError, match="no replaced tables"):
        await rebuild(settings, RebuildOptions(rollback=True, progress=False))


async def run_cli(settings: Settings, *argv: str) -> tuple[int, str]:
    """`consent-ledger ARGV` as a process of its own; its exit code and output."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.cli.main",
        *argv,
        env={**os.environ, **settings.as_environment()},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 300)
    return await process.wait(), out.decode()


async def test_a_table_nobody_classified_stops_the_rebuild_before_it_starts(
    settings: Settings, db: asyncpg.Connection
) -> None:
    await db.execute("CREATE TABLE mystery (id int)")
    with pytest.raises(RebuildError, match="mystery"):
        await rebuild(settings, RebuildOptions(progress=False))
    assert await schemas_like(db, REBUILD_SCHEMA) == []


async def test_purged_proof_stays_purged_and_a_later_chain_stays_as_it_is(
    settings: Settings, db: asyncpg.Connection
) -> None:
    async with running_projector(settings), running_api(settings) as api:
        for path, body in [
            ("consents", QUESTION),
            ("identifiers", {"type": "email", "value": "rb-gone@example.com"}),
            ("erasure", {"ground": "no_longer_necessary"}),
        ]:
            answer = await api.post(f"/v1/subjects/rb-gone/{path}", json=body)
            assert answer.status_code == 201, answer.text
        await decide(api, "rb-gone", answer.json()["token"])
        await grant(api, "rb-stays")
        later = datetime.now(UTC) + timedelta(days=3660)
        catalogue = load_catalogue(settings.catalogue_file)
        done = await purge_due(db, settings.topic, catalogue, later, dry_run=False)
        assert done.purged == [("rb-gone", 3)]
        # recorded after the purge: a new chain of one entry
        late = await api.post("/v1/subjects/rb-gone/withdrawals", json={})
        assert late.status_code == 201
        await decide(api, "rb-gone", late.json()["token"])
        await wait_until(lambda: caught_up(settings, db), 60, "the projector to catch up")
        before = await snapshot(db)

        outcome = await rebuild(settings, RebuildOptions(progress=False))

        assert outcome.purged == 1
        assert await snapshot(db) == before
        assert await db.fetchval("SELECT count(*) FROM journal WHERE subject_id = 'rb-gone'") == 1
        verified = await api.get("/v1/subjects/rb-gone/verify")
        assert verified.status_code == 200 and verified.json()["valid"] is True
        assert (await decide(api, "rb-gone"))["reason"] == "erased"


DEFINITIONS = """
SELECT 'index' AS kind, tablename AS table_name, indexdef AS definition
FROM pg_indexes WHERE schemaname = 'public'
UNION ALL
SELECT 'constraint', c.relname, k.conname || ' ' || pg_get_constraintdef(k.oid)
FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
WHERE c.relnamespace = 'public'::regnamespace
UNION ALL
SELECT 'owner', relname, pg_get_userbyid(relowner) || ' ' || coalesce(relacl::text, '')
FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'
UNION ALL
SELECT 'column', table_name, column_name || ' ' || data_type || ' ' || is_nullable || ' '
       || coalesce(column_default, '') || ' ' || ordinal_position
FROM information_schema.columns WHERE table_schema = 'public'
ORDER BY 1, 2, 3
"""


async def test_the_switched_in_tables_cannot_be_told_from_the_live_ones(
    settings: Settings, db: asyncpg.Connection
) -> None:
    role = f"rb_reader_{settings.topic.rsplit('.', 1)[-1]}"
    await db.execute(f'CREATE ROLE "{role}"')
    try:
        await db.execute(f'GRANT SELECT ON journal, subject_facts TO "{role}"')
        before = [tuple(r) for r in await db.fetch(DEFINITIONS)]
        assert any(role in r[2] for r in before if r[:2] == ("owner", "journal"))

        await rebuild(settings, RebuildOptions(progress=False))

        assert [tuple(r) for r in await db.fetch(DEFINITIONS)] == before
    finally:
        await db.execute(f'DROP OWNED BY "{role}"')
        await db.execute(f'DROP ROLE "{role}"')
