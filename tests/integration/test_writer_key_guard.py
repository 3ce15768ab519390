"""The writer-key guard against the real broker and PostgreSQL: an API whose current writer key
a projector does not know refuses decisions, /readyz and commands (nothing is written), since
that projector would dead-letter every record the API MACs with it; once the projectors know
the key, all answer; a rotation in the documented order (projectors first) refuses nothing; a
record under a key id nobody knows, which anyone with produce access can write, stops nothing."""

from __future__ import annotations

import contextlib
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import TopicPartition

from projections import projector_health
from projections.projector_health import PartitionReport
from projections.projector_monitor import ProjectorMonitor
from schemas.events import PURPOSE_KEY_PREFIX
from schemas.record_mac import EVENTS
from services.config import Settings
from services.identity.secrets import new_key
from services.importing import formats
from services.importing.run import ImportOptions, run_import
from services.ledger.kafka_clients import new_consumer
from services.ledger.topic import highwaters
from services.reads.projection_health import CACHE_S, HealthSnapshot, ProjectionHealth
from tests.conftest import TEST_SECRETS, running_api, running_projector, wait_until
from tests.integration.record_mac_support import FORGERS, QUESTION, produce_consents, writer_macs_of
from tests.integration.replay import caught_up

pytestmark = pytest.mark.integration

W1 = TEST_SECRETS["LEDGER_WRITER_KEYS"]
STALE = "urn:consent-ledger:problem:projection-stale"
UNKNOWN_KEY = "urn:consent-ledger:problem:writer-key-unknown"
#: a key labelled w2 that is not the ledger's: what a forger guessing the new key id can write
FORGED_W2 = writer_macs_of(f"w2:{new_key()}")


def rotated(settings: Settings) -> Settings:
    """The same deployment with a new writer key w2 first, w1 kept."""
    return replace(settings, writer_keys=f"w2:{new_key()},{W1}")


async def decision(api: httpx.AsyncClient, subject: str, token: str | None = None) -> Any:
    params = {"subject_id": subject, **QUESTION, **({"min_token": token} if token else {})}
    return await api.get("/v1/decision", params=params)


async def recorded_and_applied(api: httpx.AsyncClient, subject: str) -> None:
    """A consent is acknowledged, then applied: the decision after its token allows."""
    granted = await api.post(f"/v1/subjects/{subject}/consents", json=QUESTION)
    assert granted.status_code == 201, granted.text
    answer = await decision(api, subject, granted.json()["token"])
    assert answer.status_code == 200, answer.text
    assert answer.json()["allowed"] is True


def assert_names_the_key(problem: httpx.Response, kind: str) -> None:
    assert problem.status_code == 503, problem.text
    assert problem.headers["content-type"] == "application/problem+json"
    assert int(problem.headers["retry-after"]) >= 1
    body = problem.json()
    assert body["type"] == kind
    assert "does not know writer key w2" in body["detail"]
    assert "consent-ledger init --writer-keys-file" in body["detail"]


async def written(settings: Settings, db: asyncpg.Connection) -> tuple[int, int]:
    """(records in the event topic, idempotency keys claimed)."""
    records = sum((await highwaters(settings.kafka, settings.topic)).values())
    return records, int(await db.fetchval("SELECT count(*) FROM idempotency_keys"))


async def reported_keys(db: asyncpg.Connection, topic: str) -> dict[int, list[str] | None]:
    rows = await db.fetch(
        "SELECT log_partition, writer_key_ids FROM projector_partitions WHERE topic = $1", topic
    )
    return {r["log_partition"]: r["writer_key_ids"] for r in rows}


async def test_an_api_ahead_of_its_projector_refuses_until_the_projector_knows_its_key(
    settings: Settings, db: asyncpg.Connection
) -> None:
    """The API restarted with w2 first before the projector: decisions, /readyz and commands
    refuse, nothing is written; the projector restarted with w2 too: all answer."""
    ahead = rotated(settings)
    async with running_projector(settings), running_api(ahead) as api:
        assert_names_the_key(await decision(api, "wk-1"), STALE)
        batch = await api.post("/v1/decisions/batch", json={**QUESTION, "subjects": ["wk-1"]})
        assert_names_the_key(batch, STALE)
        ready = await api.get("/readyz")
        assert_names_the_key(ready, STALE)
        partitions = ready.json()["projector"]["partitions"]
        assert {p["writer_key_ids"][0] for p in partitions.values()} == {"w1"}
        async with httpx.AsyncClient(base_url=api.base_url, timeout=30) as anonymous:
            plain = await anonymous.get("/readyz")
        assert (plain.status_code, plain.json()) == (503, {"status": "not-ready"})

        # commands refuse before anything is claimed or sent
        keyed = {"Idempotency-Key": "wk-grant-1"}
        grant = await api.post("/v1/subjects/wk-1/consents", json=QUESTION, headers=keyed)
        assert_names_the_key(grant, UNKNOWN_KEY)
        assert "nothing was recorded" in grant.json()["detail"]
        withdrawal = await api.post("/v1/subjects/wk-1/withdrawals", json=QUESTION)
        assert_names_the_key(withdrawal, UNKNOWN_KEY)
        notice = {
            "version": "wk-v1",
            "effective_from": "2024-01-01T00:00:00Z",
            "text_sha256": "0" * 64,
            "url": "https://example.com/privacy/wk-v1",
            "material": False,
        }
        assert_names_the_key(await api.post("/v1/notices", json=notice), UNKNOWN_KEY)
        assert await written(settings, db) == (0, 0)

    # the projector restarted with the new ring: every request answers at once
    async with running_projector(ahead), running_api(ahead) as api:
        assert all(k == ["w2", "w1"] for k in (await reported_keys(db, settings.topic)).values())
        assert (await decision(api, "wk-1")).status_code == 200
        assert (await api.get("/readyz")).status_code == 200
        # the retried command is new: the refused one claimed nothing
        grant = await api.post("/v1/subjects/wk-1/consents", json=QUESTION, headers=keyed)
        assert grant.status_code == 201 and "idempotent-replayed" not in grant.headers
        answer = await decision(api, "wk-1", grant.json()["token"])
        assert answer.json()["allowed"] is True

        # forgeries under a key id nobody knows, or a guessed w2, are dead-lettered and stop
        # nothing: the guard reads what the projectors report, never the records
        await produce_consents(settings, ["wk-forged-1"], FORGERS["a MAC under an unknown key id"])
        await produce_consents(
            settings, ["wk-forged-2"], lambda k, v, h: FORGED_W2.seal(EVENTS, k, v, h)
        )
        await wait_until(lambda: caught_up(ahead, db), 60, "the projector to pass the forgeries")
        assert (await decision(api, "wk-forged-2")).json()["allowed"] is False
        assert (await api.get("/readyz")).status_code == 200
        await recorded_and_applied(api, "wk-2")
    reasons = await db.fetch("SELECT reason FROM rejected_records WHERE topic = $1", settings.topic)
    assert [r["reason"] for r in reasons] == ["unauthenticated-record"] * 2


async def test_an_import_stops_before_sending_what_the_projector_would_dead_letter(
    settings: Settings, db: asyncpg.Connection, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`consent-ledger import` writes like a command: with the secrets of an API ahead of the
    projector it sends nothing, says why, and a re-run finishes once the projector knows."""
    ahead = rotated(settings)
    samples = Path(formats.__file__).parent / "samples"
    sample = Path(shutil.copy(samples / "generic.csv", tmp_path / "generic.csv"))
    options = ImportOptions(sample, "generic", "newsletter", "email", progress=False)
    async with running_projector(settings):
        assert await run_import(ahead, options) == 1
    stopped = capsys.readouterr().err
    assert "stopped: the projector of partition" in stopped
    assert "does not know writer key w2" in stopped
    assert await written(settings, db) == (0, 0)
    async with running_projector(ahead):
        assert await run_import(ahead, options) == 0
    assert "recorded          4\n" in capsys.readouterr().out
    assert (await written(settings, db))[0] > 0


async def test_a_rotation_in_order_refuses_nothing_and_an_api_ahead_of_it_is_refused(
    settings: Settings, db: asyncpg.Connection
) -> None:
    """Two projectors restarted one by one with [w2, w1] while an API on w1 keeps recording
    and deciding; halfway, an API already on w2 is refused on the partitions of the projector
    not restarted yet; once every partition reports w2, APIs on w2 answer at once."""
    new = rotated(settings)
    async with (
        running_api(settings) as old_api,
        contextlib.AsyncExitStack() as first,
        contextlib.AsyncExitStack() as second,
    ):
        await first.enter_async_context(running_projector(settings))
        await second.enter_async_context(running_projector(settings))
        await recorded_and_applied(old_api, "roll-1")

        await first.aclose()
        await first.enter_async_context(running_projector(new))
        await recorded_and_applied(old_api, "roll-2")

        async def one_of_each() -> bool:
            reported = await reported_keys(db, settings.topic)
            return len(reported) == 4 and {tuple(k or ()) for k in reported.values()} == {
                ("w1",),
                ("w2", "w1"),
            }

        await wait_until(one_of_each, 30, "each projector to report its partitions")
        reported = await reported_keys(db, settings.topic)
        lacking = ", ".join(str(p) for p, k in sorted(reported.items()) if k == ["w1"])
        async with running_api(new) as early:
            refused = await decision(early, "roll-1")
            assert_names_the_key(refused, STALE)
            assert f"the projector of partition {lacking} does not know" in refused.json()["detail"]
            grant = await early.post("/v1/subjects/roll-x/consents", json=QUESTION)
            assert_names_the_key(grant, UNKNOWN_KEY)
        await recorded_and_applied(old_api, "roll-3")

        await second.aclose()
        await second.enter_async_context(running_projector(new))

        async def all_know_w2() -> bool:
            reported = await reported_keys(db, settings.topic)
            return len(reported) == 4 and all(k == ["w2", "w1"] for k in reported.values())

        await wait_until(all_know_w2, 30, "every partition to report w2")
        # the APIs move to w2, one by one: the old one keeps answering meanwhile
        async with running_api(new) as new_api:
            await recorded_and_applied(new_api, "roll-4")
            await recorded_and_applied(old_api, "roll-5")
            assert (await new_api.get("/readyz")).status_code == 200
    assert await db.fetchval("SELECT count(*) FROM rejected_records") == 0
    subjects = "SELECT count(*) FROM journal WHERE NOT starts_with(subject_id, $1)"
    assert await db.fetchval(subjects, PURPOSE_KEY_PREFIX) == 5  # not the purpose catalogue


async def test_a_new_owner_reports_its_writer_keys_before_it_applies_anything(
    settings: Settings, db: asyncpg.Connection
) -> None:
    """The previous owner knew w2; the partitions' new owner does not: its keys replace the
    previous owner's on assignment, not a report interval later."""
    reports = [PartitionReport(p, 0, 0, 0.0) for p in range(settings.topic_partitions)]
    await projector_health.report(db, settings.topic, reports, ["w2", "w1"])
    consumer = new_consumer(settings.kafka, enable_auto_commit=False, auto_offset_reset="none")
    await consumer.start()
    try:
        tps = [TopicPartition(settings.topic, p) for p in (1, 2)]
        consumer.assign(tps)
        monitor = ProjectorMonitor(consumer, settings.topic, writer_key_ids=("w1",))
        await monitor.assigned(db, tps, {})
    finally:
        await consumer.stop()
    assert await reported_keys(db, settings.topic) == {
        0: ["w2", "w1"],
        1: ["w1"],
        2: ["w1"],
        3: ["w2", "w1"],
    }


class CountedHealth(ProjectionHealth):
    """The real projection health on a frozen clock, counting its reads of the reports."""

    def __init__(self, pool: asyncpg.Pool, settings: Settings, writer_key_id: str) -> None:
        self.now = 1000.0
        super().__init__(
            pool, settings.topic, settings.topic_partitions, 30_000, writer_key_id, lambda: self.now
        )
        self.reads = 0

    async def snapshot(self) -> HealthSnapshot:
        self.reads += 1
        return await super().snapshot()


async def test_commands_read_the_reports_at_most_once_a_second_even_while_stale(
    settings: Settings, db: asyncpg.Connection
) -> None:
    """Commands are not refused for lateness, so a late verdict answers them for CACHE_S too:
    a stale projection does not cost every command a read of the reports."""
    late = [PartitionReport(p, 0, 5, None) for p in range(settings.topic_partitions)]
    await projector_health.report(db, settings.topic, late, ["w1"])
    async with asyncpg.create_pool(settings.database_url, min_size=1, max_size=2) as pool:
        health = CountedHealth(pool, settings, "w1")
        for _ in range(5):
            verdict = await health.writes_verdict()
            assert not verdict.fresh and verdict.writes_refused is None
        assert health.reads == 1
        health.now += CACHE_S
        assert (await health.writes_verdict()).writes_refused is None
        assert health.reads == 2
        # decisions still read a verdict that is not fresh again at once
        assert not (await health.verdict()).fresh and health.reads == 3

        ahead = CountedHealth(pool, settings, "w2")
        refused = await ahead.writes_verdict()
        assert refused.writes_refused is not None and "writer key w2" in refused.writes_refused
