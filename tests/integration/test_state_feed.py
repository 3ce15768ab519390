"""The state feed: commands become records on the compacted state topic, and a projector killed
at any point still leaves every subject's latest record equal to its projected state."""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import TopicPartition
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from projections import feed_outbox
from schemas import events as ev
from schemas.codec import default_codec, kafka_headers
from schemas.events import Event, Source
from schemas.feeds import SCHEMA_HEADER, decode_subject_state
from services.bootstrap import publishing_sessions
from services.config import Settings
from services.ledger.kafka_clients import new_admin, new_consumer, new_producer
from services.ledger.partitioning import partition_for
from services.ledger.tokens import decode_token
from services.ledger.topic import highwaters
from services.projector.state_feed import StateFeed
from services.rules.catalogue import load_catalogue
from services.rules.state_summary import entries
from tests.conftest import running_api, running_projector, wait_until
from tests.integration.replay import caught_up, start_projector_process, state_by_subject
from tests.writer_macs import sealed

pytestmark = pytest.mark.integration

Latest = dict[str, tuple[dict[str, Any], dict[str, bytes]]]


@contextlib.asynccontextmanager
async def running_feed(settings: Settings, batch_size: int = 500) -> AsyncIterator[StateFeed]:
    feed = StateFeed(
        settings,
        load_catalogue(settings.catalogue_file),
        sessions=publishing_sessions(settings),
        batch_size=batch_size,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(feed.run(stop))
    try:
        yield feed
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


@pytest.fixture
async def feed_api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        running_projector(settings),
        running_feed(settings),
        running_api(settings) as client,
    ):
        yield client


async def read_state_topic(settings: Settings) -> Latest:
    """Every record of the state topic from the beginning; the latest value per key wins."""
    marks = await highwaters(settings.kafka, settings.state_topic)
    consumer = new_consumer(settings.kafka, enable_auto_commit=False)
    await consumer.start()
    latest: Latest = {}
    try:
        tps = [TopicPartition(settings.state_topic, p) for p in sorted(marks)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        read = dict.fromkeys(marks, 0)

        async def done() -> bool:
            fetched = await consumer.getmany(*tps, timeout_ms=100)
            for tp, messages in fetched.items():
                for m in messages:
                    assert m.key is not None and m.value is not None
                    latest[m.key.decode()] = (decode_subject_state(m.value), dict(m.headers))
                    read[tp.partition] = m.offset + 1
            return all(read[p] >= end for p, end in marks.items())

        await wait_until(done, 60, "the whole state topic to be read")
    finally:
        await consumer.stop()
    return latest


async def feed_drained(db: asyncpg.Connection) -> bool:
    return await feed_outbox.pending(db) == 0


def decisions(found: list[dict[str, Any]]) -> dict[tuple[str, str], tuple[bool, str, Any]]:
    return {(e["purpose"], e["channel"]): (e["allowed"], e["reason"], e["until"]) for e in found}


async def test_the_state_topic_is_created_compacted(settings: Settings) -> None:
    admin = new_admin(settings.kafka)
    await admin.start()
    try:
        (topic,) = await admin.describe_topics([settings.state_topic])
        resource = ConfigResource(ConfigResourceType.TOPIC, settings.state_topic)
        (response,) = await admin.describe_configs([resource])
    finally:
        await admin.close()
    assert len(topic["partitions"]) == settings.topic_partitions
    ((error, _, _, _, entries),) = response.resources
    assert error == 0
    configs = {entry[0]: entry[1] for entry in entries}
    assert configs["cleanup.policy"] == "compact"


async def post(api: httpx.AsyncClient, subject: str, path: str, body: dict[str, Any]) -> Any:
    response = await api.post(f"/v1/subjects/{subject}/{path}", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def test_commands_reach_the_state_topic_as_the_subjects_decisions(
    feed_api: httpx.AsyncClient, settings: Settings, db: asyncpg.Connection
) -> None:
    expires = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    steps: list[tuple[str, str, dict[str, Any]]] = [
        ("fa-1", "consents", {"purpose": "newsletter", "expires_at": expires.isoformat()}),
        ("fa-2", "consents", {"purpose": "marketing_partners"}),
        ("fa-2", "objections", {"kind": "direct_marketing", "channel": "sms"}),
        ("fa-3", "withdrawals", {}),
        ("fa-4", "consents", {"purpose": "marketing_own"}),
        ("fa-4", "objections", {"kind": "direct_marketing"}),
        ("fa-4", "objections/lift", {"kind": "direct_marketing", "evidence": "ticket 9"}),
    ]
    tokens: dict[str, str] = {}
    for subject, path, body in steps:
        tokens[subject] = (await post(feed_api, subject, path, body))["token"]
    expected: dict[str, dict[tuple[str, str], tuple[bool, str]]] = {}
    for subject, token in tokens.items():
        response = await feed_api.get(
            f"/v1/subjects/{subject}/consent", params={"min_token": token}
        )
        assert response.status_code == 200, response.text
        expected[subject] = {
            (p["purpose"], channel): (answer["allowed"], answer["reason"])
            for p in response.json()["purposes"]
            if p["direct_marketing"]
            for channel, answer in p["channels"].items()
        }
    await wait_until(lambda: feed_drained(db), 30, "the feed to publish every change")

    latest = await read_state_topic(settings)
    assert set(latest) == set(tokens)
    for subject, (record, headers) in latest.items():
        got = decisions(record["entries"])
        assert {k: v[:2] for k, v in got.items()} == expected[subject]
        assert record["subject_id"] == subject
        assert headers[SCHEMA_HEADER] == b"SubjectState.v1"
        partition, position = decode_token(tokens[subject])
        assert record["source"]["partition"] == partition == partition_for(subject, 4)
        assert record["source"]["next_offset"] >= position
    fa1 = decisions(latest["fa-1"][0]["entries"])
    assert fa1[("newsletter", "email")] == (True, "consent_given", expires)
    fa2 = decisions(latest["fa-2"][0]["entries"])
    assert fa2[("marketing_partners", "sms")][:2] == (False, "objected_direct_marketing")
    assert fa2[("marketing_partners", "post")] == (True, "consent_given", None)
    assert all(not allowed for allowed, _, _ in decisions(latest["fa-3"][0]["entries"]).values())
    assert decisions(latest["fa-4"][0]["entries"])[("marketing_own", "sms")][:2] == (
        True,
        "consent_given",
    )


def marketing_event(rng: random.Random, subject: str, at: datetime) -> Event:
    """A random event that moves direct-marketing decisions; expiries far from now, so the
    expected decisions do not change while a test runs."""
    purpose = rng.choice(["newsletter", "marketing_own", "marketing_partners", "profiling"])
    channel = rng.choice([None, "email", "sms"])
    expiry = rng.choice([None, at - timedelta(days=400), at + timedelta(days=400)])
    choices: list[tuple[str, dict[str, Any]]] = [
        (
            ev.CONSENT_GRANTED,
            {
                "purpose": purpose,
                "channel": channel,
                "expires_at": expiry,
                "request_event_id": None,
                "evidence": None,
            },
        ),
        (ev.CONSENT_WITHDRAWN, {"purpose": rng.choice([None, purpose]), "channel": channel}),
        (ev.DIRECT_MARKETING_OBJECTED, {"channel": channel}),
        (ev.DIRECT_MARKETING_OBJECTION_LIFTED, {"channel": channel, "evidence": "t"}),
        (ev.RELATIONSHIP_RECORDED, {"basis": "contract", "purposes": [], "valid_until": None}),
        (ev.RELATIONSHIP_ENDED, {"basis": None, "purposes": []}),
    ]
    kind, data = rng.choice(choices)
    return Event(kind, uuid.UUID(int=rng.getrandbits(128)), subject, at, at, Source(), data=data)


async def produce_log(settings: Settings, count: int, subjects: int, seed: int) -> None:
    """Append `count` random marketing events for `subjects` subjects, some sent twice."""
    rng = random.Random(seed)
    codec = default_codec()
    now = datetime.now(UTC)
    producer = new_producer(settings.kafka, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = []
        for i in range(count):
            event = marketing_event(
                rng, f"subj-{rng.randrange(subjects)}", now + timedelta(milliseconds=i)
            )
            for _ in range(2 if rng.random() < 0.02 else 1):
                value, key = codec.encode(event), event.subject_id.encode()
                futures.append(
                    await producer.send(
                        settings.topic,
                        value,
                        key=key,
                        headers=sealed(key, value, kafka_headers(event)),
                    )
                )
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def expected_states(db: asyncpg.Connection, settings: Settings) -> dict[str, Any]:
    """What the projection says each subject's entries are (every subject in the journal)."""
    catalogue = load_catalogue(settings.catalogue_file)
    now = datetime.now(UTC)
    states = await state_by_subject(db)
    subjects = [r["subject_id"] for r in await db.fetch("SELECT DISTINCT subject_id FROM journal")]
    return {
        s: [e.as_record() for e in entries(states.get(s, {}), catalogue, now)] for s in subjects
    }


async def test_a_projector_killed_mid_way_loses_no_state_record(
    settings: Settings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    # large enough that a kill still finds the projector part-way (it applies a few thousand
    # events a second)
    count = 6000
    await produce_log(settings, count=count, subjects=150, seed=21)
    rng = random.Random(5)
    log_file = str(tmp_path / "projector.log")
    mid_way = 0
    for _ in range(4):
        process = start_projector_process(settings, log_file)
        start = await db.fetchval("SELECT count(*) FROM journal")
        target = min(start + rng.randrange(300, 1500), count)

        async def progressed(target: int = target) -> bool:
            if await db.fetchval("SELECT count(*) FROM journal") < target:
                return False
            # the feed has published part of what was applied, so the kill interrupts it
            queued = await db.fetchval("SELECT count(*) FROM state_feed_outbox")
            held = await db.fetchval("SELECT count(DISTINCT subject_id) FROM journal")
            return bool(queued < held)

        try:
            await wait_until(progressed, 60, "the projector to make progress")
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait()
        if await db.fetchval("SELECT count(*) FROM journal") >= count:
            break
        mid_way += 1
    assert mid_way >= 2, "the log was too small to kill the projector mid-way"
    published = await highwaters(settings.kafka, settings.state_topic)
    assert any(published.values()), "the killed feeds had published nothing to interrupt"

    process = start_projector_process(settings, log_file)
    try:
        await wait_until(lambda: caught_up(settings, db), 120, "the projector to catch up")
        await wait_until(lambda: feed_drained(db), 120, "the feed to publish every change")
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    latest = await read_state_topic(settings)
    expected = await expected_states(db, settings)
    assert len(expected) == 150
    assert {s: record["entries"] for s, (record, _) in latest.items()} == expected


async def test_an_empty_state_topic_is_refilled_and_two_feeds_share_the_work(
    settings: Settings, db: asyncpg.Connection
) -> None:
    await produce_log(settings, count=300, subjects=60, seed=8)
    async with running_projector(settings):
        await wait_until(lambda: caught_up(settings, db), 60, "the projector to catch up")
    # as after an upgrade: facts projected, nothing queued, nothing on the state topic
    await db.execute("DELETE FROM state_feed_outbox")
    async with running_feed(settings, 7) as one, running_feed(settings, 7) as two:

        async def both_ready() -> bool:
            return one.ready.is_set() and two.ready.is_set()

        await wait_until(both_ready, 30, "both feeds to check the state topic")
        await wait_until(lambda: feed_drained(db), 60, "the feeds to publish every subject")
        assert one.published + two.published >= 60
    latest = await read_state_topic(settings)
    expected = await expected_states(db, settings)
    assert {s: record["entries"] for s, (record, _) in latest.items()} == expected
