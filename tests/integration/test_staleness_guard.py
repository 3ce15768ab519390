"""The staleness guard and the lag metrics over real servers: decisions fail closed while the
projection is behind the log, and answer again once the projector has caught up."""

from __future__ import annotations

import re

import asyncpg
import httpx
import pytest
from aiokafka import TopicPartition

from projections.projector_monitor import ProjectorMonitor
from services.config import Settings
from services.ledger.kafka_clients import new_consumer
from tests.conftest import make_settings, running_api, running_projector, wait_until
from tests.integration.replay import produce_to_partition
from tests.servers import Servers
from tests.writer_macs import TEST_MACS

pytestmark = pytest.mark.integration

NEWSLETTER = {"purpose": "newsletter", "channel": "email"}
BATCH = {**NEWSLETTER, "subjects": ["stale-1", "stale-2"]}


async def command(api: httpx.AsyncClient, subject: str, path: str, body: dict[str, str]) -> str:
    response = await api.post(f"/v1/subjects/{subject}/{path}", json=body)
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


async def decide(api: httpx.AsyncClient, subject: str, token: str | None = None) -> httpx.Response:
    params = {"subject_id": subject, **NEWSLETTER, **({"min_token": token} if token else {})}
    return await api.get("/v1/decision", params=params)


def gauge(metrics: str, name: str, partition: int) -> float:
    found = re.search(rf'^{name}{{partition="{partition}"}} (\S+)$', metrics, re.MULTILINE)
    assert found, f"no {name} for partition {partition} in:\n{metrics}"
    return float(found.group(1))


async def test_decisions_fail_closed_while_the_projector_is_stopped_and_resume_after(
    real_servers: Servers,
) -> None:
    settings = await make_settings(real_servers, LEDGER_MAX_STALENESS_MS="1500")
    async with running_api(settings) as api:
        async with running_projector(settings):

            async def caught_up() -> bool:
                return (await api.get("/readyz")).status_code == 200

            # the API's start recorded the purpose catalogue: the projector catches up with it
            await wait_until(caught_up, 30, "the projector to catch up with the log")
            granted = await command(api, "stale-1", "consents", {"purpose": "newsletter"})
            answer = await decide(api, "stale-1", granted)
            assert answer.status_code == 200 and answer.json()["allowed"] is True
            ready = (await api.get("/readyz")).json()
            assert ready["projector"]["fresh"] is True
            assert {p["lag"] for p in ready["projector"]["partitions"].values()} == {0}
            assert (await api.post("/v1/decisions/batch", json=BATCH)).status_code == 200

        # the projector is gone and the log moves on: a withdrawal it has not applied
        withdrawn = await command(api, "stale-1", "withdrawals", {"purpose": "newsletter"})

        async def refused() -> bool:
            return (await decide(api, "stale-1")).status_code == 503

        await wait_until(refused, 30, "the guard to refuse decisions")
        stale = await decide(api, "stale-1")
        assert stale.headers["content-type"] == "application/problem+json"
        assert int(stale.headers["retry-after"]) >= 1
        assert stale.json()["type"] == "urn:consent-ledger:problem:projection-stale"
        assert "behind the log" in stale.json()["detail"]
        batch = await api.post("/v1/decisions/batch", json=BATCH)
        assert batch.status_code == 503 and "behind the log" in batch.json()["detail"]
        by_address = await api.get("/v1/decision", params={"email": "a@example.com", **NEWSLETTER})
        assert by_address.status_code == 503
        # the lists sending systems send from fail closed too
        for path, query in (
            ("/v1/suppressions", {"channel": "email"}),
            ("/v1/reconsent", {"purpose": "newsletter"}),
            ("/v1/audiences", NEWSLETTER),
        ):
            listed = await api.get(path, params=query)
            assert listed.status_code == 503, (path, listed.text)
            assert listed.json()["type"] == "urn:consent-ledger:problem:projection-stale"
        # bad input is still named, never hidden behind the 503
        bad = await api.get("/v1/decision", params={"subject_id": "stale-1", "purpose": "nope"})
        assert bad.status_code == 422
        not_ready = await api.get("/readyz")
        assert not_ready.status_code == 503
        assert "behind the log" in not_ready.json()["detail"]
        assert not_ready.json()["projector"]["staleness_s"] > 1.5
        metrics = (await api.get("/metrics")).text
        assert max(gauge(metrics, "ledger_projector_behind_seconds", p) for p in range(4)) > 1.5

        async with running_projector(settings):

            async def answered() -> bool:
                return (await decide(api, "stale-1")).status_code == 200

            await wait_until(answered, 60, "decisions to resume")
            # fresh again means caught up since: the withdrawal is applied, no token needed
            assert (await decide(api, "stale-1")).json()["allowed"] is False
            assert (await decide(api, "stale-1", withdrawn)).json()["allowed"] is False
            assert (await api.get("/readyz")).status_code == 200


async def test_lag_is_the_high_water_mark_minus_the_position(
    settings: Settings, db: asyncpg.Connection
) -> None:
    await produce_to_partition(settings, 1, 5, "lag", seed=9)

    # the projector's own watch over a consumer that fetches but applies nothing
    consumer = new_consumer(
        settings.kafka,
        enable_auto_commit=False,
        auto_offset_reset="none",
    )
    await consumer.start()
    try:
        tps = [TopicPartition(settings.topic, p) for p in range(settings.topic_partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        monitor = ProjectorMonitor(consumer, settings.topic, writer_key_ids=TEST_MACS.key_ids)
        await monitor.assigned(db, tps, {})

        async def fetched() -> bool:
            await consumer.getmany(timeout_ms=100)
            return all(consumer.highwater(tp) is not None for tp in tps)

        await wait_until(fetched, 30, "a high-water mark for every partition")
        await monitor.report(db)
    finally:
        await consumer.stop()

    async with running_api(settings) as api:
        metrics = (await api.get("/metrics")).text
        assert [gauge(metrics, "ledger_projector_lag_records", p) for p in range(4)] == [
            0,
            5,
            0,
            0,
        ]
        assert gauge(metrics, "ledger_projector_behind_seconds", 1) == float("inf")
        ready = await api.get("/readyz")
        assert ready.status_code == 503
        assert "partition 1 has not caught up with the log yet" in ready.json()["detail"]

        async with running_projector(settings):

            async def applied() -> bool:
                text = (await api.get("/metrics")).text
                return gauge(text, "ledger_projector_lag_records", 1) == 0

            await wait_until(applied, 60, "the projector to apply partition 1")
            assert (await api.get("/readyz")).status_code == 200
            text = (await api.get("/metrics")).text
            assert all(gauge(text, "ledger_projector_behind_seconds", p) < 30 for p in range(4))
            batches = re.search(r"^ledger_projector_batch_records_count (\d+)$", text, re.M)
            assert batches and int(batches.group(1)) >= 1


async def test_a_loss_stop_refuses_decisions_even_with_the_time_limit_off(
    real_servers: Servers,
) -> None:
    settings = await make_settings(real_servers, LEDGER_MAX_STALENESS_MS="0")
    db = await asyncpg.connect(settings.database_url)
    try:
        async with running_projector(settings), running_api(settings) as api:
            assert (await decide(api, "stop-1")).status_code == 200
            await db.execute(
                "INSERT INTO projector_stops (topic, log_partition, problem, stored_offset)"
                " VALUES ($1, 0, 'ahead_of_log', 7)",
                settings.topic,
            )

            async def refused() -> bool:
                return (await decide(api, "stop-1")).status_code == 503

            await wait_until(refused, 30, "the stop to refuse decisions")
            answer = await decide(api, "stop-1")
            assert "stopped" in answer.json()["detail"]
            await db.execute("DELETE FROM projector_stops WHERE topic = $1", settings.topic)

            async def answered() -> bool:
                return (await decide(api, "stop-1")).status_code == 200

            await wait_until(answered, 30, "decisions to resume after the stop is cleared")
    finally:
        await db.close()
