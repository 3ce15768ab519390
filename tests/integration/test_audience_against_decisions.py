"""The SQL audience against decide(), for the hard states: random histories (erasure,
restriction and its lift, a pending sign-up, expiry on either side of now, direct-marketing
objection and its lift, processing objection and its outcome, relationship ended) written to
the event log, and subjects known only by a linked address; the streamed audience must be
exactly the subjects GET /v1/decision allows, for each question."""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from projections import offsets
from schemas.codec import default_codec, kafka_headers
from schemas.events import Event
from services.config import Settings
from services.ledger.kafka_clients import new_producer
from tests.conftest import make_settings, running_api, running_projector, wait_until
from tests.properties import examples
from tests.servers import Servers
from tests.unit import event_log as el
from tests.writer_macs import sealed

pytestmark = pytest.mark.integration

#: consent-based, legitimate-interest (allowed with no facts), and contract-based questions
QUESTIONS = [
    ("newsletter", "email"),
    ("marketing_own", "email"),
    ("customer_relationship", "email"),
]
NOW = datetime.now(UTC)
PAST, FUTURE = NOW - timedelta(days=30), NOW + timedelta(days=30)
RUN = itertools.count()

SPECS = st.sampled_from(
    [
        el.grant("newsletter", "email"),
        el.grant("newsletter"),
        el.grant("newsletter", "email", PAST),  # expired
        el.grant("newsletter", "email", FUTURE),
        el.grant("marketing_own", "email", FUTURE),
        el.request("newsletter", "email", FUTURE),  # a sign-up awaiting its confirmation
        el.withdraw(),
        el.withdraw("newsletter", "email"),
        el.dm_object(),
        el.dm_object("email"),
        el.dm_lift(),
        el.object_processing("marketing_own"),
        el.object_processing("customer_relationship"),
        el.resolve("marketing_own", "upheld"),
        el.resolve("customer_relationship", "compelling_grounds"),
        el.restrict("legal_claims", []),
        el.restrict("accuracy_contested", ["newsletter"]),
        el.lift_restriction(None, []),
        el.relationship("contract", ["customer_relationship"], FUTURE),
        el.relationship("contract", ["customer_relationship"], PAST),
        el.end_relationship(None, ["customer_relationship"]),
        el.erase(),
    ]
)
#: per subject: its events, and whether it also links an address (alone: address only)
SUBJECTS = st.lists(st.tuples(st.lists(SPECS, max_size=4), st.booleans()), min_size=1, max_size=6)


@pytest.fixture(scope="module")
async def module_settings(real_servers: Servers) -> Settings:
    return await make_settings(real_servers)


@pytest.fixture(scope="module")
async def api(module_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with running_projector(module_settings), running_api(module_settings) as client:
        yield client


async def write(settings: Settings, api: httpx.AsyncClient, plan: list[tuple[list[el.Spec], bool]],
                prefix: str) -> None:  # fmt: skip
    """Addresses through the API, events straight to the log (with their MACs), then wait
    until the projection has applied them."""
    codec = default_codec()
    producer = new_producer(settings.kafka, acks="all")
    await producer.start()
    ends: dict[int, int] = {}
    try:
        for n, (specs, linked) in enumerate(plan):
            subject = f"{prefix}-{n}"
            if linked:
                link = {"type": "email", "value": f"{subject}@example.com"}
                answer = await api.post(f"/v1/subjects/{subject}/identifiers", json=link)
                assert answer.status_code == 201, answer.text
            for kind, data in specs:
                event = Event(kind, uuid.uuid4(), subject, NOW, NOW, data=data)
                value = codec.encode(event)
                meta = await (
                    await producer.send(
                        settings.topic,
                        key=subject.encode(),
                        value=value,
                        headers=sealed(subject.encode(), value, kafka_headers(event)),
                    )
                )
                ends[meta.partition] = max(ends.get(meta.partition, 0), meta.offset + 1)
    finally:
        await producer.stop()
    conn = await asyncpg.connect(settings.database_url)
    try:

        async def applied() -> bool:
            stored = await offsets.load(conn, settings.topic)
            return all(stored.get(p, 0) >= end for p, end in ends.items())

        await wait_until(applied, 30, "the projection to apply the events")
    finally:
        await conn.close()


@settings(
    max_examples=examples(6),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(plan=SUBJECTS)
async def test_the_audience_is_who_the_decision_allows(
    api: httpx.AsyncClient, module_settings: Settings, plan: list[tuple[list[el.Spec], bool]]
) -> None:
    prefix = f"h{next(RUN)}-{uuid.uuid4().hex[:6]}"
    await write(module_settings, api, plan, prefix)
    subjects = [f"{prefix}-{n}" for n, _ in enumerate(plan)]
    for purpose, channel in QUESTIONS:
        question = {"purpose": purpose, "channel": channel}
        answer = await api.get("/v1/audiences", params=question)
        assert answer.status_code == 200, answer.text
        *rows, _ = [json.loads(line) for line in answer.text.splitlines()]
        listed = {r["subject_id"] for r in rows if r["subject_id"].startswith(f"{prefix}-")}
        allowed = set()
        for subject in subjects:
            decision = await api.get("/v1/decision", params={"subject_id": subject, **question})
            assert decision.status_code == 200, decision.text
            if decision.json()["allowed"]:
                allowed.add(subject)
        assert listed == allowed, (purpose, channel, plan)
