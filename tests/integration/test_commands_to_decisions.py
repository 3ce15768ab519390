"""Command -> event on the topic -> projection -> decision, against the real servers."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from schemas.codec import default_codec
from schemas.events import NOT_ABOUT_A_SUBJECT
from services.config import Settings
from services.ledger.kafka_clients import new_consumer
from services.ledger.tokens import encode_token

pytestmark = pytest.mark.integration

JSON = {"content-type": "application/json"}


async def post(api: httpx.AsyncClient, subject: str, path: str, body: dict[str, Any]) -> Any:
    response = await api.post(f"/v1/subjects/{subject}/{path}", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def decision(
    api: httpx.AsyncClient, subject: str, purpose: str, channel: str, token: str
) -> Any:
    params = {"subject_id": subject, "purpose": purpose, "channel": channel, "min_token": token}
    response = await api.get("/v1/decision", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def about_a_subject(record: Any) -> bool:
    """Not one of the ledger's own events (the purpose catalogue every API start records)."""
    return dict(record.headers)["event_type"].decode() not in NOT_ABOUT_A_SUBJECT


async def read_topic(settings: Settings, expected: int) -> list[Any]:
    """The subjects' records on the topic, once `expected` of them are there (or after 20 s)."""
    consumer = new_consumer(
        settings.kafka,
        settings.topic,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        records: list[Any] = []
        for _ in range(200):
            batch = await consumer.getmany(timeout_ms=100)
            records += [m for msgs in batch.values() for m in msgs if about_a_subject(m)]
            if len(records) >= expected:
                break
        return records
    finally:
        await consumer.stop()


async def test_a_grant_lands_on_the_topic_keyed_by_subject_and_allows(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    body = {
        "purpose": "newsletter",
        "channel": "email",
        "method": "form",
        "notice_version": "2023-05-04",
        "source": {"system": "website", "collection_point": "footer"},
    }
    created = await post(api, "cust-1", "consents", body)
    assert created["type"] == "ConsentGranted" and created["subject_id"] == "cust-1"

    (record,) = await read_topic(settings, 1)
    assert record.key == b"cust-1"
    headers = dict(record.headers)
    assert headers["event_type"] == b"ConsentGranted"
    assert headers["event_id"] == created["event_id"].encode()
    event = default_codec().decode(record.value)
    assert str(event.event_id) == created["event_id"]
    assert event.data["purpose"] == "newsletter" and event.notice_version == "2023-05-04"
    assert event.source.collection_point == "footer" and event.actor.type == "subject"
    assert created["token"] == encode_token(record.partition, record.offset + 1)

    answer = await decision(api, "cust-1", "newsletter", "email", created["token"])
    assert answer["allowed"] is True and answer["reason"] == "consent_given"
    assert answer["basis"] == "consent" and answer["evidence"] == [created["event_id"]]


async def test_objection_withdrawal_and_lift_change_the_decision(api: httpx.AsyncClient) -> None:
    s = "cust-2"
    grant = await post(api, s, "consents", {"purpose": "newsletter"})
    objection = await post(api, s, "objections", {"kind": "direct_marketing"})
    denied = await decision(api, s, "newsletter", "email", objection["token"])
    assert (denied["allowed"], denied["reason"]) == (False, "objected_direct_marketing")
    assert denied["evidence"] == [objection["event_id"]]

    regrant = await post(api, s, "consents", {"purpose": "newsletter"})
    still = await decision(api, s, "newsletter", "email", regrant["token"])
    assert still["reason"] == "objected_direct_marketing"

    lift = await post(
        api, s, "objections/lift", {"kind": "direct_marketing", "evidence": "ticket 7"}
    )
    allowed = await decision(api, s, "newsletter", "email", lift["token"])
    assert (allowed["allowed"], allowed["reason"]) == (True, "consent_given")
    assert allowed["evidence"] == [regrant["event_id"], lift["event_id"]]

    gone = await post(api, s, "withdrawals", {"reason": "too many mails"})
    withdrawn = await decision(api, s, "newsletter", "email", gone["token"])
    assert (withdrawn["allowed"], withdrawn["reason"]) == (False, "consent_withdrawn")

    history = (
        await api.get(f"/v1/subjects/{s}/events", params={"min_token": gone["token"]})
    ).json()
    ids = [e["event_id"] for e in history["events"]]
    expected = [grant, objection, regrant, lift, gone]
    assert ids == [e["event_id"] for e in expected]
    offsets = [e["offset"] for e in history["events"]]
    assert offsets == sorted(offsets)


async def test_consent_with_lift_objection_records_both_events(api: httpx.AsyncClient) -> None:
    s = "cust-3"
    await post(api, s, "objections", {"kind": "direct_marketing", "channel": "email"})
    both = await post(api, s, "consents", {"purpose": "newsletter", "lift_objection": True})
    assert [e["type"] for e in both["events"]] == [
        "DirectMarketingObjectionLifted",
        "ConsentGranted",
    ]
    answer = await decision(api, s, "newsletter", "email", both["token"])
    assert answer["reason"] == "consent_given"


async def test_relationship_restriction_and_processing_objection(api: httpx.AsyncClient) -> None:
    s = "cust-4"
    rel = await post(api, s, "relationships", {"basis": "contract"})
    contract = await decision(api, s, "customer_relationship", "email", rel["token"])
    assert (contract["allowed"], contract["reason"]) == (True, "contract")
    li = await decision(api, s, "marketing_own", "email", rel["token"])
    assert (li["allowed"], li["reason"]) == (True, "legitimate_interest")

    objected = await post(api, s, "objections", {"kind": "processing", "purpose": "research"})
    research = await decision(api, s, "research", "email", objected["token"])
    assert research["reason"] == "objected_processing"
    resolved = await post(
        api, s, "objections/resolve", {"purpose": "research", "outcome": "compelling_grounds"}
    )
    research = await decision(api, s, "research", "email", resolved["token"])
    assert (research["allowed"], research["reason"]) == (True, "legitimate_interest")

    restricted = await post(api, s, "restrictions", {"ground": "accuracy_contested"})
    for purpose in ("customer_relationship", "marketing_own"):
        answer = await decision(api, s, purpose, "email", restricted["token"])
        assert answer["reason"] == "restricted"
    legal = await decision(api, s, "legal_obligation", "email", restricted["token"])
    assert legal["allowed"] is True

    told = restricted["recorded_at"]  # the subject is told before the lift (Art. 18(3))
    lifted = await post(
        api, s, "restrictions/lift", {"evidence": "corrected", "subject_informed_at": told}
    )
    state = (
        await api.get(f"/v1/subjects/{s}/consent", params={"min_token": lifted["token"]})
    ).json()
    by_purpose = {p["purpose"]: p for p in state["purposes"]}
    assert by_purpose["customer_relationship"]["status"] == "contract"
    assert state["restrictions"] == []
    assert [r["type"] for r in state["relationships"]] == ["RelationshipRecorded"]

    ended = await post(api, s, "relationships/end", {})
    after = await decision(api, s, "customer_relationship", "email", ended["token"])
    assert (after["allowed"], after["reason"]) == (False, "no_legal_basis")
    assert after["evidence"] == [lifted["event_id"], ended["event_id"]]


async def test_read_your_writes_waits_and_a_future_token_is_503(
    real_servers: Any,
) -> None:
    from tests.conftest import make_settings, running_api, running_projector, wait_until

    settings = await make_settings(real_servers, LEDGER_READ_WAIT_MS="300")
    async with running_api(settings) as client:
        created = await post(client, "cust-5", "consents", {"purpose": "newsletter"})
        params = {"subject_id": "cust-5", "purpose": "newsletter", "channel": "email"}
        # no projector runs yet: the write cannot be visible, so the answer must not pretend
        waiting = await client.get("/v1/decision", params={**params, "min_token": created["token"]})
        assert waiting.status_code == 503
        assert waiting.headers["content-type"] == "application/problem+json"
        assert int(waiting.headers["retry-after"]) >= 1
        async with running_projector(settings):
            wait_params = {**params, "min_token": created["token"]}

            async def visible() -> bool:
                return (await client.get("/v1/decision", params=wait_params)).status_code == 200

            await wait_until(visible, 30, "the projector to apply the grant")
            answer = await decision(client, "cust-5", "newsletter", "email", created["token"])
            assert answer["reason"] == "consent_given"


async def test_concurrent_decisions_answer_each_as_a_lone_one_would(api: httpx.AsyncClient) -> None:
    """Decisions asked together share statements (services/reads/coalescer.py); each answer must
    still be its own subject's, with its own partition's token."""
    tokens = {}
    for n in range(12):
        subject = f"crowd-{n}"
        if n % 3 != 2:
            made = await post(
                api, subject, "consents", {"purpose": "newsletter", "channel": "email"}
            )
            tokens[subject] = made["token"]
        if n % 3 == 1:
            made = await post(api, subject, "objections", {"kind": "direct_marketing"})
            tokens[subject] = made["token"]
    subjects = [f"crowd-{n}" for n in range(12)] + ["crowd-never-seen"]
    for subject, token in tokens.items():
        await decision(api, subject, "newsletter", "email", token)  # the projection has them all

    async def ask(subject: str) -> Any:
        params = {"subject_id": subject, "purpose": "newsletter", "channel": "email"}
        response = await api.get("/v1/decision", params=params)
        assert response.status_code == 200, response.text
        return response.json()

    together = await asyncio.gather(*(ask(s) for s in subjects * 3))
    alone = [await ask(s) for s in subjects]
    assert together == alone * 3
    reasons = {a["subject_id"]: (a["allowed"], a["reason"]) for a in alone}
    assert reasons["crowd-0"] == (True, "consent_given")
    assert reasons["crowd-1"] == (False, "objected_direct_marketing")
    assert reasons["crowd-2"][0] is False
    assert reasons["crowd-never-seen"][0] is False
    assert len({a["token"] for a in alone if a["subject_id"] != "crowd-never-seen"}) > 1
