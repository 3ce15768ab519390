"""POST /v1/decisions/batch against the real servers: thousands of subjects with random
histories answered exactly as `decide()` answers each, e-mail recipients, the evidence record
on the checks topic, the largest batch, and `min_tokens`."""

from __future__ import annotations

import hashlib
import logging
import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from projections.state import Position, fold
from schemas.check_codec import ContactCheck, decode_check
from schemas.codec import default_codec, kafka_headers
from schemas.events import Event
from services.config import Settings
from services.http.body import parse_time
from services.identity.identities import blind_index, normalise_email
from services.ledger.kafka_clients import new_consumer, new_producer
from services.ledger.tokens import decode_snapshot_token, decode_token, encode_token
from services.rules.catalogue import Purpose
from services.rules.decisions import decide
from tests.conftest import make_settings, running_api, running_projector
from tests.servers import Servers
from tests.unit import event_log as el
from tests.writer_macs import sealed

pytestmark = pytest.mark.integration

SUBJECTS = 3000
QUESTIONS = [
    ("newsletter", "email"),
    ("marketing_partners", "sms"),
    ("marketing_own", "post"),
    ("research", "web"),
    ("customer_relationship", "phone"),
    ("legal_obligation", "email"),
]
History = dict[str, list[tuple[Event, Position]]]


def random_specs(rnd: random.Random, now: datetime) -> list[el.Spec]:
    """Up to five events a real subject might have, expiries around now."""
    purposes = list(el.PURPOSE_IDS)
    objectable = [p for p in purposes if p != "legal_obligation"]
    moment = rnd.choice([None, None, now - timedelta(days=30), now + timedelta(days=30)])
    channel = rnd.choice([None, "email", "sms", "post"])
    marketing = ["newsletter", "marketing_partners", "marketing_own"]
    makers = [
        lambda: el.grant(rnd.choice(marketing), channel, moment),
        lambda: el.grant("newsletter"),
        lambda: el.withdraw(rnd.choice([None, "newsletter", "marketing_partners"]), channel),
        lambda: el.dm_object(channel),
        lambda: el.dm_lift(channel),
        lambda: el.object_processing(rnd.choice(objectable)),
        lambda: el.resolve(rnd.choice(objectable), rnd.choice(["upheld", "compelling_grounds"])),
        lambda: el.restrict("legal_claims", rnd.sample(purposes, rnd.randint(0, 2))),
        lambda: el.lift_restriction(None, []),
        lambda: el.relationship(rnd.choice(["contract", "legitimate_interest"]), [], moment),
        lambda: el.end_relationship(None, rnd.sample(purposes, rnd.randint(0, 1))),
    ]  # fmt: skip
    return [rnd.choice(makers)() for _ in range(rnd.choice([0, 1, 1, 2, 2, 3, 5]))]


async def seed(settings: Settings) -> tuple[History, dict[int, int]]:
    """Produce random histories straight to the event topic (far faster than the API);
    returns each subject's events with their positions and the log end of each partition."""
    rnd = random.Random(20260301)
    now = datetime.now(UTC)
    codec = default_codec()
    producer = new_producer(settings.kafka, acks="all")
    await producer.start()
    try:
        pending = []
        for n in range(SUBJECTS):
            subject = f"b-{n}"
            for kind, data in random_specs(rnd, now):
                event = Event(kind, uuid.uuid4(), subject, now, now, data=data)
                value = codec.encode(event)
                future = await producer.send(
                    settings.topic,
                    key=subject.encode(),
                    value=value,
                    headers=sealed(subject.encode(), value, kafka_headers(event)),
                )
                pending.append((event, future))
        history: History = {f"b-{n}": [] for n in range(SUBJECTS)}
        ends: dict[int, int] = {}
        for event, future in pending:
            meta = await future
            history[event.subject_id].append((event, (meta.partition, meta.offset)))
            ends[meta.partition] = max(ends.get(meta.partition, 0), meta.offset + 1)
        return history, ends
    finally:
        await producer.stop()


@pytest.fixture(scope="module")
async def batch_settings(real_servers: Servers) -> Settings:
    return await make_settings(real_servers, LEDGER_CHECKS_TOPIC=f"checks.{uuid.uuid4().hex}")


@pytest.fixture(scope="module")
async def batch_api(batch_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with running_projector(batch_settings), running_api(batch_settings) as client:
        yield client


@pytest.fixture(scope="module")
async def seeded(batch_settings: Settings) -> tuple[History, list[str]]:
    history, ends = await seed(batch_settings)
    return history, [encode_token(p, end) for p, end in sorted(ends.items())]


async def check(api: httpx.AsyncClient, body: dict[str, Any], status: int = 200) -> Any:
    response = await api.post("/v1/decisions/batch", json=body)
    assert response.status_code == status, response.text
    return response.json()


def catalogue_purpose(pid: str) -> Purpose:
    found = el.CATALOGUE.get(pid)
    assert found is not None
    return found


def reasons(answer: dict[str, Any]) -> dict[str, str | None]:
    denied = {d["recipient"]: d["reason"] for d in answer["denied"]}
    return {**dict.fromkeys(answer["allowed"]), **denied}


async def read_check(settings: Settings, check_id: str) -> tuple[ContactCheck, Any]:
    consumer = new_consumer(
        settings.kafka,
        settings.checks_topic,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        for _ in range(300):
            batch = await consumer.getmany(timeout_ms=100)
            for record in (r for records in batch.values() for r in records):
                if dict(record.headers)["check_id"] == check_id.encode():
                    return decode_check(record.value), record
        raise AssertionError(f"no check {check_id} on {settings.checks_topic}")
    finally:
        await consumer.stop()


async def test_every_subject_is_answered_as_decide_answers_it(
    batch_api: httpx.AsyncClient, seeded: tuple[History, list[str]]
) -> None:
    history, tokens = seeded
    strangers = [f"nobody-{n}" for n in range(50)]
    for pid, channel in QUESTIONS:
        body = {"purpose": pid, "channel": channel, "min_tokens": tokens}
        answer = await check(batch_api, {**body, "subjects": [*history, *strangers]})
        now = parse_time(answer["checked_at"])
        assert now is not None
        purpose = catalogue_purpose(pid)
        decisions = {
            subject: decide(fold(pairs), purpose, channel, now)
            for subject, pairs in [*history.items(), *((s, []) for s in strangers)]
        }
        expected = {s: None if d.allowed else d.reason for s, d in decisions.items()}
        assert reasons(answer) == expected, pid
        assert answer["allowed"] == [s for s in [*history, *strangers] if expected[s] is None]
        counts = answer["counts"]
        assert (counts["requested"], counts["allowed"]) == (len(expected), len(answer["allowed"]))
        assert answer["check"] is None
        for subject in random.Random(pid).sample(list(history), 15):
            params = {"subject_id": subject, "purpose": pid, "channel": channel}
            single = (await batch_api.get("/v1/decision", params=params)).json()
            assert (single["allowed"], single["reason"]) == (
                decisions[subject].allowed,
                decisions[subject].reason,
            )


async def test_the_answer_names_its_snapshot_and_evidence_goes_to_the_checks_topic(
    batch_api: httpx.AsyncClient, batch_settings: Settings, seeded: tuple[History, list[str]]
) -> None:
    history, tokens = seeded
    subjects = [*list(history)[:500], "b-1", "b-2"]
    body = {"purpose": "newsletter", "channel": "email", "campaign_id": "spring-2026"}
    answer = await check(batch_api, {**body, "subjects": subjects, "min_tokens": tokens})
    positions = decode_snapshot_token(answer["token"])
    assert len(positions) == 4
    for token in tokens:  # the snapshot is at least where min_tokens asked
        partition, position = decode_token(token)
        assert positions[partition] >= position
    again = await check(batch_api, {**body, "subjects": subjects, "min_tokens": [answer["token"]]})
    assert reasons(again) == reasons(answer)

    record, kafka_record = await read_check(batch_settings, answer["check"]["check_id"])
    assert kafka_record.key == b"spring-2026"
    assert (kafka_record.partition, kafka_record.offset) == (
        answer["check"]["partition"],
        answer["check"]["offset"],
    )
    assert answer["check"]["topic"] == batch_settings.checks_topic
    assert (record.campaign_id, record.purpose, record.channel) == (
        "spring-2026",
        "newsletter",
        "email",
    )
    assert record.snapshot_token == answer["token"] and record.recipient_kind == "subjects"
    assert record.checked_at == parse_time(answer["checked_at"])
    denied = len(answer["denied"])
    assert (record.requested, record.allowed, record.denied) == (500, 500 - denied, denied)
    assert record.denied_by_reason == answer["counts"]["denied_by_reason"]
    assert sum(record.denied_by_reason.values()) == record.denied
    assert record.recipients_digest == digest(f"subject:{s}" for s in subjects)
    assert record.allowed_digest == digest(f"subject:{s}" for s in answer["allowed"])


def digest(keys: Any) -> str:
    return hashlib.sha256("\n".join(sorted(set(keys))).encode()).hexdigest()


async def test_emails_are_resolved_and_never_leave_the_answer(
    batch_api: httpx.AsyncClient,
    batch_settings: Settings,
    seeded: tuple[History, list[str]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, tokens = seeded
    linked = {f"Person.{n}@Example.org": f"mail-{n}" for n in range(3)}
    last = ""
    for address, subject in linked.items():
        grant = await batch_api.post(
            f"/v1/subjects/{subject}/consents", json={"purpose": "newsletter"}
        )
        link = await batch_api.post(
            f"/v1/subjects/{subject}/identifiers", json={"type": "email", "value": address}
        )
        assert grant.status_code == link.status_code == 201, link.text
        last = link.json()["token"]
    caplog.set_level(logging.DEBUG)
    emails = [
        "person.0@example.org",
        "PERSON.1@example.org",
        "Person.2@Example.org",
        "person.0@example.org",
        "stranger@example.org",
        "not an address",
    ]
    body = {"purpose": "newsletter", "channel": "email", "campaign_id": "mail-1"}
    answer = await check(batch_api, {**body, "emails": emails, "min_tokens": [*tokens, last]})
    assert answer["allowed"] == emails[:3]
    assert answer["denied"] == [
        {"recipient": "stranger@example.org", "reason": "unknown_subject"},
        {"recipient": "not an address", "reason": "invalid_address"},
    ]
    assert answer["counts"]["requested"] == 5
    record, _ = await read_check(batch_settings, answer["check"]["check_id"])
    key = batch_settings.secrets().blind_index_key

    def email_key(address: str) -> str:
        return f"email:{blind_index(key, 'email', normalise_email(address)).hex()}"

    invalid = f"invalid:{blind_index(key, 'invalid', 'not an address').hex()}"
    assert record.recipients_digest == digest([*map(email_key, emails[:5]), invalid])
    assert record.allowed_digest == digest(map(email_key, emails[:3]))
    assert record.denied_by_reason == {"invalid_address": 1, "unknown_subject": 1}
    assert record.recipient_kind == "emails"
    logged = caplog.text.lower()
    assert "example.org" not in logged and "not an address" not in logged


async def test_min_tokens_make_a_withdrawal_visible_in_the_very_next_check(
    batch_api: httpx.AsyncClient,
) -> None:
    body = {"purpose": "newsletter", "channel": "email"}
    for n in range(5):
        subject = f"rw-{n}"
        grant = await batch_api.post(
            f"/v1/subjects/{subject}/consents", json={"purpose": "newsletter"}
        )
        ask = {**body, "subjects": [subject], "min_tokens": [grant.json()["token"]]}
        assert (await check(batch_api, ask))["allowed"] == [subject]
        gone = await batch_api.post(f"/v1/subjects/{subject}/withdrawals", json={})
        ask = {**body, "subjects": [subject], "min_tokens": [gone.json()["token"]]}
        answer = await check(batch_api, ask)
        assert answer["denied"] == [{"recipient": subject, "reason": "consent_withdrawn"}]


async def test_the_largest_batch_is_answered(batch_api: httpx.AsyncClient) -> None:
    """100,000 subjects, the most a batch takes (past it, and other bad input, is checked
    in-process: tests/unit/services/api/test_batch_input.py)."""
    base = {"purpose": "newsletter", "channel": "email"}
    fine = await check(batch_api, {**base, "subjects": [f"s-{n}" for n in range(100_000)]})
    assert fine["counts"]["requested"] == 100_000
