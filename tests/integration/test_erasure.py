"""Erasure against the real servers: the identities in the old records can no longer be
decrypted, the address stays suppressed when it comes back (import, link, batch check,
suppression list), an erased subject takes only what stops processing, its state-feed record
becomes a tombstone and the retention job purges its proof."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas import events as ev
from schemas.codec import default_codec
from services.catalogue import load_catalogue
from services.config import Settings
from services.identities import IdentifierError, blind_index, decrypt_identifier, normalise
from services.importing.run import ImportOptions, run_import
from services.keystore import DataKeys
from services.retention import purge_due, run_retention
from services.topic import highwaters
from tests.conftest import wait_until
from tests.integration.test_state_feed import running_feed

pytestmark = pytest.mark.integration

ADDRESS = "Ada.Erased@Example.com"


async def topic_events(settings: Settings, topic: str | None = None) -> list[tuple[bytes, Any]]:
    """Every (key, value) of a topic, read straight from the broker from the beginning."""
    name = topic or settings.topic
    ends = await highwaters(settings.kafka_bootstrap_servers, name)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tps = [TopicPartition(name, p) for p in ends]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        out: list[tuple[bytes, Any]] = []
        while [tp for tp in tps if await consumer.position(tp) < ends[tp.partition]]:
            for records in (await consumer.getmany(*tps, timeout_ms=200)).values():
                out += [(r.key or b"", r.value) for r in records]
        return out
    finally:
        await consumer.stop()


async def settled(api: httpx.AsyncClient, subject: str, token: str) -> None:
    answer = await api.get(f"/v1/subjects/{subject}/consent", params={"min_token": token})
    assert answer.status_code == 200, answer.text


async def decide_email(api: httpx.AsyncClient, email: str, token: str | None = None) -> Any:
    params = {"email": email, "purpose": "newsletter", "channel": "email"}
    answer = await api.get(
        "/v1/decision", params={**params, **({"min_token": token} if token else {})}
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


async def import_address(
    settings: Settings, tmp_path: Path, name: str, status: str = "subscribed"
) -> tuple[int, str]:
    path = tmp_path / name
    when = "2024-05-04T10:00:00Z"
    path.write_text(f"email,status,opted_in_at,changed_at\n{ADDRESS},{status},{when},{when}\n")
    code = await run_import(
        settings, ImportOptions(path, "generic", "newsletter", "email", progress=False)
    )
    rejects = path.with_name(path.name + ".rejects.csv")
    return code, rejects.read_text() if rejects.exists() else ""


async def test_erasure_shreds_the_identities_and_the_address_stays_suppressed(
    api: httpx.AsyncClient, settings: Settings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    # a subscriber imported from a list: its subject id is derived from the address
    assert (await import_address(settings, tmp_path, "first.csv"))[0] == 0
    await wait_until(lambda: _linked(db), 30, "the import to be projected")
    first = await decide_email(api, ADDRESS)
    erased, token = first["subject_id"], first["token"]
    assert first["allowed"] and erased.startswith("s-")
    other = await api.post(
        "/v1/subjects/er-other/identifiers", json={"type": "email", "value": "other@example.com"}
    )
    assert other.status_code == 201

    answer = await api.post(
        f"/v1/subjects/{erased}/erasure",
        json={"ground": "consent_withdrawn", "method": "support"},
        headers={"Idempotency-Key": "erase-1"},
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["type"] == "SubjectErased"
    assert answer.json()["data_key"] == "shredded"
    # the key is gone as soon as the answer comes, before the projector has seen anything
    key_row = await db.fetchrow(
        "SELECT wrapped_key, master_key_id, shredded_at FROM subject_keys WHERE subject_id = $1",
        erased,
    )
    assert key_row is not None and key_row["wrapped_key"] is None
    assert key_row["master_key_id"] is None and key_row["shredded_at"] is not None
    again = await api.post(
        f"/v1/subjects/{erased}/erasure",
        json={"ground": "consent_withdrawn", "method": "support"},
        headers={"Idempotency-Key": "erase-1"},
    )
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.json()["event_id"] == answer.json()["event_id"]
    token = answer.json()["token"]
    await settled(api, erased, token)

    # the old records, straight from the topic: their identities open with no key there is
    keys = DataKeys(db, settings.secrets().master)
    codec = default_codec()
    linked = [
        codec.decode(value)
        for key, value in await topic_events(settings)
        if key == erased.encode() and value is not None
    ]
    sealed = [e for e in linked if e.type == ev.IDENTIFIER_LINKED]
    assert len(sealed) == 1 and any(e.type == ev.SUBJECT_ERASED for e in linked)
    assert await keys.existing(erased) is None
    assert await keys.for_subjects([erased]) == {}, "no key is ever made again for it"
    ciphertext = bytes(sealed[0].data["ciphertext"])
    for candidate in (await keys.for_subject("er-other"), os.urandom(32), bytes(32)):
        with pytest.raises(IdentifierError):
            decrypt_identifier(candidate, erased, "email", ciphertext)
    journal = await db.fetchval(
        "SELECT record_value FROM journal WHERE event_id = $1", sealed[0].event_id
    )
    assert bytes(journal) == codec.encode(sealed[0]), "the journal keeps the log's bytes"

    # the projections: no identifier row, a suppression entry, the erasure recorded
    assert await db.fetchval("SELECT count(*) FROM identifiers WHERE subject_id = $1", erased) == 0
    index = blind_index(settings.secrets().blind_index_key, "email", normalise("email", ADDRESS))
    entry = await db.fetchrow(
        "SELECT reason, event_id FROM suppressed_identifiers WHERE blind_index = $1", index
    )
    assert entry is not None and entry["reason"] == "erased"
    assert str(entry["event_id"]) == answer.json()["event_id"]
    decision = await api.get(
        "/v1/decision",
        params={"subject_id": erased, "purpose": "newsletter", "channel": "email"},
    )
    assert decision.json()["reason"] == "erased"
    assert decision.json()["evidence"] == [answer.json()["event_id"]]
    legal = await api.get(
        "/v1/decision",
        params={"subject_id": erased, "purpose": "legal_obligation", "channel": "post"},
    )
    assert legal.json()["allowed"] is True
    assert (await decide_email(api, ADDRESS))["reason"] == "unknown_subject"

    # the erased subject: what stops processing is taken, what would restart it is refused
    for path, body in [
        ("consents", {"purpose": "newsletter", "channel": "email"}),
        ("identifiers", {"type": "email", "value": ADDRESS}),
        ("relationships", {"basis": "contract"}),
    ]:
        refused = await api.post(f"/v1/subjects/{erased}/{path}", json=body)
        assert refused.status_code == 409, (path, refused.text)
        assert refused.json()["type"] == "urn:consent-ledger:problem:subject-erased"
    for path, body in [("withdrawals", {}), ("objections", {"kind": "direct_marketing"})]:
        taken = await api.post(f"/v1/subjects/{erased}/{path}", json=body)
        assert taken.status_code == 201, (path, taken.text)

    # the address comes back: an import leaves it out ...
    before = await highwaters(settings.kafka_bootstrap_servers, settings.topic)
    code, rejects = await import_address(settings, tmp_path, "again.csv")
    assert code == 0 and "2,suppressed: the address belonged to an erased subject" in rejects
    assert await highwaters(settings.kafka_bootstrap_servers, settings.topic) == before
    assert await keys.for_subjects([erased]) == {}

    # ... and linking it to a new subject does not make it contactable
    relinked = await api.post(
        "/v1/subjects/er-new/identifiers", json={"type": "email", "value": ADDRESS.upper()}
    )
    assert relinked.status_code == 201, relinked.text
    assert relinked.json()["suppressed"]["reason"] == "erased"
    granted = await api.post(
        "/v1/subjects/er-new/consents", json={"purpose": "newsletter", "channel": "email"}
    )
    assert granted.status_code == 201
    now = await decide_email(api, ADDRESS, granted.json()["token"])
    assert (now["subject_id"], now["allowed"], now["reason"]) == ("er-new", False, "suppressed")
    assert now["evidence"] == [relinked.json()["event_id"]]
    batch = await api.post(
        "/v1/decisions/batch",
        json={
            "purpose": "newsletter",
            "channel": "email",
            "emails": [ADDRESS, "other@example.com"],
            "min_tokens": [granted.json()["token"]],
        },
    )
    assert batch.status_code == 200, batch.text
    assert {d["recipient"]: d["reason"] for d in batch.json()["denied"]}[ADDRESS] == "suppressed"
    # a list may name it again for the subject that holds it now: recorded for that subject
    code, rejects = await import_address(settings, tmp_path, "third.csv", "blocklisted")
    assert code == 0 and rejects == ""
    await wait_until(lambda: _projected(settings, db), 30, "the third import to be projected")
    assert (await decide_email(api, ADDRESS))["reason"] == "objected_direct_marketing"
    listed = await api.get("/v1/suppressions", params={"channel": "email"})
    assert {e["blind_index"]: e["reason"] for e in listed.json()["suppressions"]} == {
        index.hex(): "erased"
    }

    # only the person's own explicit request clears it (a grant lifting the objection)
    lifted = await api.post(
        "/v1/subjects/er-new/consents",
        json={"purpose": "newsletter", "channel": "email", "lift_objection": True},
    )
    assert lifted.status_code == 201
    assert (await decide_email(api, ADDRESS, lifted.json()["token"]))["allowed"] is True


async def _projected(settings: Settings, db: asyncpg.Connection) -> bool:
    ends = await highwaters(settings.kafka_bootstrap_servers, settings.topic)
    rows = await db.fetch(
        "SELECT log_partition, next_offset FROM projector_offsets WHERE topic = $1",
        settings.topic,
    )
    done = {r["log_partition"]: r["next_offset"] for r in rows}
    return all(done.get(p, 0) >= end for p, end in ends.items())


async def _linked(db: asyncpg.Connection) -> bool:
    return bool(await db.fetchval("SELECT count(*) FROM identifiers WHERE linked"))


async def test_the_state_feed_publishes_a_tombstone(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    granted = await api.post(
        "/v1/subjects/er-feed/consents", json={"purpose": "newsletter", "channel": "email"}
    )
    erased = await api.post("/v1/subjects/er-feed/erasure", json={"ground": "objection"})
    assert granted.status_code == erased.status_code == 201
    await settled(api, "er-feed", erased.json()["token"])
    async with running_feed(settings):

        async def tombstoned() -> bool:
            records = [v for k, v in await topic_events(settings, settings.state_topic) if k]
            return bool(records) and records[-1] is None

        await wait_until(tombstoned, 30, "a tombstone for the erased subject")


async def test_retention_purges_the_proof_and_keeps_the_erasure(
    api: httpx.AsyncClient,
    settings: Settings,
    db: asyncpg.Connection,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for path, body in [
        ("consents", {"purpose": "newsletter", "channel": "email"}),
        ("identifiers", {"type": "email", "value": "ret@example.com"}),
        ("erasure", {"ground": "no_longer_necessary"}),
    ]:
        answer = await api.post(f"/v1/subjects/er-ret/{path}", json=body)
        assert answer.status_code == 201, answer.text
    await settled(api, "er-ret", answer.json()["token"])
    kept = await api.post("/v1/subjects/er-kept/consents", json={"purpose": "newsletter"})
    await settled(api, "er-kept", kept.json()["token"])
    catalogue = load_catalogue(settings.catalogue_file)
    now = datetime.now(UTC)
    early = await purge_due(db, settings.topic, catalogue, now, dry_run=False)
    assert early.purged == [] and [s for s, _ in early.waiting] == ["er-ret"]
    [(_, until)] = early.waiting
    assert now + timedelta(days=3 * 365) <= until <= now + timedelta(days=3 * 366)
    assert await run_retention(settings, dry_run=True) == 0
    assert capsys.readouterr().out == (
        "retention: 1 erased subject(s) with proof kept; would purge 0 (0 journal entries)\n"
        f"retention: next proof period ends {until.isoformat()} (er-ret)\n"
    )
    dry = await purge_due(db, settings.topic, catalogue, until, dry_run=True)
    assert dry.purged == [("er-ret", 3)]
    assert await db.fetchval("SELECT count(*) FROM journal WHERE subject_id = 'er-ret'") == 3

    done = await purge_due(db, settings.topic, catalogue, until, dry_run=False)
    assert done.purged == [("er-ret", 3)]
    assert await db.fetchval("SELECT count(*) FROM journal WHERE subject_id = 'er-ret'") == 0
    facts = await db.fetch("SELECT kind FROM subject_facts WHERE subject_id = 'er-ret'")
    assert [f["kind"] for f in facts] == ["erasure"]
    record = await db.fetchrow("SELECT * FROM erasures WHERE subject_id = 'er-ret'")
    assert record is not None and record["purged_events"] == 3 and record["chain_head"]
    assert await db.fetchval("SELECT count(*) FROM suppressed_identifiers") == 1
    assert await db.fetchval("SELECT count(*) FROM journal WHERE subject_id = 'er-kept'") == 1
    decision = await api.get(
        "/v1/decision",
        params={"subject_id": "er-ret", "purpose": "newsletter", "channel": "email"},
    )
    assert decision.json()["reason"] == "erased"

    # an event recorded after the purge starts a new, verifiable chain
    late = await api.post("/v1/subjects/er-ret/withdrawals", json={})
    assert late.status_code == 201
    await settled(api, "er-ret", late.json()["token"])
    verified = await api.get("/v1/subjects/er-ret/verify")
    assert verified.status_code == 200, verified.text
    assert verified.json()["valid"] is True
    assert verified.json()["events"] == 1
    assert (await purge_due(db, settings.topic, catalogue, until, dry_run=False)).purged == [
        ("er-ret", 1)
    ]


async def test_the_public_pages_take_an_unsubscribe_but_no_new_choice(
    api: httpx.AsyncClient,
) -> None:
    granted = await api.post(
        "/v1/subjects/er-page/consents", json={"purpose": "newsletter", "channel": "email"}
    )
    links = await api.post(
        "/v1/unsubscribe-links",
        json={"subject_id": "er-page", "purpose": "newsletter", "channel": "email"},
    )
    erased = await api.post("/v1/subjects/er-page/erasure", json={"ground": "consent_withdrawn"})
    assert granted.status_code == erased.status_code == 201 and links.status_code == 200
    await settled(api, "er-page", erased.json()["token"])
    preferences = urlsplit(links.json()["preferences_url"]).path
    ticked = await api.post(preferences, data={"choice": ["marketing_partners.sms"]})
    # refused (as out of date, since the form carries no digest of a page shown, or as erased):
    # either way nothing is recorded, which the history below shows
    assert ticked.status_code == 409 and "Nothing was" in ticked.text
    unsubscribed = await api.post(
        urlsplit(links.json()["url"]).path, data={"List-Unsubscribe": "One-Click"}
    )
    assert unsubscribed.status_code == 200, unsubscribed.text
    events = await api.get(
        "/v1/subjects/er-page/events",
        params={"min_token": unsubscribed.headers["ledger-token"]},
    )
    assert [e["type"] for e in events.json()["events"]][-2:] == [
        "SubjectErased",
        "ConsentWithdrawn",
    ]


async def test_a_link_that_raced_the_erasure_is_suppressed_and_forgotten(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    """A link whose data key was fetched before the erasure can still reach the log after
    SubjectErased: its address must be suppressed like the ones the subject held."""
    import uuid

    from aiokafka import AIOKafkaProducer

    from schemas.codec import kafka_headers
    from schemas.events import Event, Source

    erased = await api.post("/v1/subjects/er-race/erasure", json={"ground": "consent_withdrawn"})
    assert erased.status_code == 201, erased.text
    await settled(api, "er-race", erased.json()["token"])
    index = blind_index(settings.secrets().blind_index_key, "email", "late@example.com")
    now = datetime.now(UTC)
    late = Event(
        ev.IDENTIFIER_LINKED,
        uuid.uuid4(),
        "er-race",
        now,
        now,
        Source(),
        data={"identifier_type": "email", "blind_index": index, "ciphertext": b"\x01" + bytes(40)},
    )
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            settings.topic,
            default_codec().encode(late),
            key=b"er-race",
            headers=kafka_headers(late),
        )
    finally:
        await producer.stop()
    conn = await asyncpg.connect(settings.database_url)
    try:

        async def suppressed() -> bool:
            found = await conn.fetchval(
                "SELECT reason FROM suppressed_identifiers WHERE blind_index = $1", index
            )
            return bool(found == "erased")

        await wait_until(suppressed, 15, "the late link's address to be suppressed")
        left = await conn.fetchval("SELECT count(*) FROM identifiers WHERE subject_id = 'er-race'")
        assert left == 0
    finally:
        await conn.close()
    answer = await decide_email(api, "late@example.com")
    assert answer["allowed"] is False
