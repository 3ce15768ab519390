"""Loss detection over real servers: a projector whose stored offsets the log cannot serve
stops applying, says why (/readyz, /metrics, ERROR lines) and never resets its position, until
an operator repairs the log or the projection and clears the stop."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import TopicPartition
from aiokafka.admin import RecordsToDelete

from projections import offsets, projector_health
from projections.log_loss import AHEAD_OF_LOG, BEFORE_LOG_START
from services.config import Settings
from services.ledger.kafka_clients import new_admin
from services.ledger.partitioning import partition_for
from services.ledger.topic import ensure_topic, highwaters
from services.operations.projector_resume import run_resume_projector
from services.operations.restore_log import restore_if_log_empty
from tests.conftest import running_api, running_projector, wait_until
from tests.integration.purpose_support import FILE_PURPOSES
from tests.integration.replay import produce_to_partition
from tests.servers import Servers

pytestmark = pytest.mark.integration

NEWSLETTER = {"purpose": "newsletter", "channel": "email"}


async def grant(api: httpx.AsyncClient, subject: str) -> str:
    response = await api.post(f"/v1/subjects/{subject}/consents", json={"purpose": "newsletter"})
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


async def decide(api: httpx.AsyncClient, subject: str, token: str | None = None) -> httpx.Response:
    params = {"subject_id": subject, **NEWSLETTER, **({"min_token": token} if token else {})}
    return await api.get("/v1/decision", params=params)


def stopped(db: asyncpg.Connection, topic: str) -> Any:
    async def check() -> bool:
        return bool(await projector_health.load_stops(db, topic))

    return check


async def recreate_topic(settings: Settings) -> None:
    """Delete the event topic and create it again: same name, empty log."""
    admin = new_admin(settings.kafka)
    await admin.start()
    try:
        await admin.delete_topics([settings.topic])

        async def gone() -> bool:
            return settings.topic not in await admin.list_topics()

        await wait_until(gone, 60, "the topic to be deleted")
    finally:
        await admin.close()
    await ensure_topic(settings)

    async def empty() -> bool:
        marks = await highwaters(settings.kafka, settings.topic)
        return len(marks) == settings.topic_partitions and not any(marks.values())

    await wait_until(empty, 60, "the new, empty topic")


async def test_a_recreated_topic_stops_the_projector_until_restored_and_resumed(
    settings: Settings, db: asyncpg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_projector(settings), running_api(settings) as api:
        token = await grant(api, "loss-1")
        assert (await decide(api, "loss-1", token)).json()["allowed"] is True
    stored = await offsets.load(db, settings.topic)
    assert stored

    await recreate_topic(settings)
    with caplog.at_level(logging.ERROR, logger="projections.runner"):
        async with running_projector(settings), running_api(settings) as api:
            await wait_until(stopped(db, settings.topic), 60, "the projector to stop")
            stops = await projector_health.load_stops(db, settings.topic)
            assert [(x.partition, x.problem, x.stored_offset, x.highwater) for x in stops] == [
                (p, AHEAD_OF_LOG, n, 0) for p, n in sorted(stored.items())
            ]
            ready = await api.get("/readyz")
            assert ready.status_code == 503
            assert ready.headers["content-type"] == "application/problem+json"
            assert "recreated or truncated" in ready.json()["detail"]
            assert ready.json()["projector"]["stopped"] == [x.describe() for x in stops]
            refused = await decide(api, "loss-1")
            assert refused.status_code == 503
            assert refused.json()["type"].endswith(":projection-stale")
            assert int(refused.headers["retry-after"]) >= 1
            metrics = (await api.get("/metrics")).text.splitlines()
            assert "ledger_projector_stopped 1" in metrics
            for p in stored:
                assert f'ledger_projector_log_loss{{partition="{p}",problem="ahead_of_log"}} 1' in (
                    metrics
                )
            # never reset: the stored offsets still name the projected log
            assert await offsets.load(db, settings.topic) == stored
            assert "recreated or truncated" in caplog.text and "resume-projector" in caplog.text

            # the operator restores the log from the journal, then clears the stop
            # the subject's event and the catalogue file's purposes, seeded at start
            assert await restore_if_log_empty(settings, db) == 1 + FILE_PURPOSES
            assert await run_resume_projector(settings) == 0

            async def ready_again() -> bool:
                return (await api.get("/readyz")).status_code == 200

            await wait_until(ready_again, 60, "the projector to resume")
            answer = await decide(api, "loss-1")
            assert answer.status_code == 200, answer.text
            assert answer.json()["allowed"] is True
            assert await projector_health.load_stops(db, settings.topic) == []


async def test_an_offset_beyond_the_log_stops_every_partition_and_survives_a_resume(
    settings: Settings, db: asyncpg.Connection
) -> None:
    settings = replace(settings, read_wait_ms=1000)
    await offsets.store(db, settings.topic, {0: 50})
    elsewhere = next(s for s in (f"other-{i}" for i in range(100)) if partition_for(s, 4) != 0)
    async with running_projector(settings), running_api(settings) as api:
        await wait_until(stopped(db, settings.topic), 60, "the projector to stop")
        [stop] = await projector_health.load_stops(db, settings.topic)
        assert (stop.partition, stop.problem, stop.stored_offset) == (0, AHEAD_OF_LOG, 50)
        # the log holds at most the catalogue file's purposes, seeded at start
        assert stop.highwater is not None and stop.highwater <= FILE_PURPOSES
        # an event on a healthy partition waits too: the projector stopped applying entirely
        token = await grant(api, elsewhere)
        waiting = await api.get(f"/v1/subjects/{elsewhere}/events", params={"min_token": token})
        assert waiting.status_code == 503, waiting.text

        # clearing the stop while the log still cannot serve the offset stops it again
        first = await db.fetchval("SELECT detected_at FROM projector_stops")
        assert await run_resume_projector(settings) == 0

        async def detected_again() -> bool:
            again = await db.fetchval("SELECT detected_at FROM projector_stops")
            return again is not None and again > first

        await wait_until(detected_again, 60, "the projector to find the loss again")
        assert (await offsets.load(db, settings.topic))[0] == 50

        # once the projection is repaired (here: the bogus position removed), it resumes
        await db.execute("DELETE FROM projector_offsets WHERE log_partition = 0")
        assert await run_resume_projector(settings) == 0

        async def applied() -> bool:
            events = await api.get(f"/v1/subjects/{elsewhere}/events", params={"min_token": token})
            return events.status_code == 200 and len(events.json()["events"]) == 1

        await wait_until(applied, 60, "the projector to resume and apply the grant")


async def test_records_deleted_before_they_were_projected_stop_the_projector(
    real_servers: Servers, settings: Settings, db: asyncpg.Connection
) -> None:
    if real_servers.kind == "embedded":
        pytest.skip(
            "the embedded broker (Tansu) has no DeleteRecords; only a real Kafka broker can"
            " delete records from the beginning of a log"
        )
    await produce_to_partition(settings, 0, 5, "del", seed=3)
    admin = new_admin(settings.kafka)
    await admin.start()
    try:
        await admin.delete_records({TopicPartition(settings.topic, 0): RecordsToDelete(3)})
    finally:
        await admin.close()

    async with running_projector(settings):
        await wait_until(stopped(db, settings.topic), 60, "the projector to stop")
    [stop] = await projector_health.load_stops(db, settings.topic)
    assert (stop.partition, stop.problem, stop.stored_offset, stop.log_start) == (
        0,
        BEFORE_LOG_START,
        0,
        3,
    )
    assert await db.fetchval("SELECT count(*) FROM journal") == 0
