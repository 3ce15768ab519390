"""Erasure against the real servers: shredded identities, suppression, tombstone, purge."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest

from schemas import events as ev
from schemas.codec import default_codec
from services.config import Settings
from services.identity.identities import IdentifierError, blind_index, decrypt_identifier, normalise
from services.identity.keystore import DataKeys
from services.ledger.topic import highwaters
from services.proof.retention import purge_due, run_retention
from services.rules.catalogue import load_catalogue
from tests.conftest import wait_until
from tests.integration.erasure_support import (
    ADDRESS,
    decide_email,
    import_address,
    settled,
    topic_events,
)
from tests.integration.test_state_feed import running_feed

pytestmark = pytest.mark.integration


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
    before = await highwaters(settings.kafka, settings.topic)
    code, rejects = await import_address(settings, tmp_path, "again.csv")
    assert code == 0 and "2,suppressed: the address belonged to an erased subject" in rejects
    assert await highwaters(settings.kafka, settings.topic) == before
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
    ends = await highwaters(settings.kafka, settings.topic)
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
    printed = capsys.readouterr().out.splitlines()
    assert printed[:2] == [
        "retention: 1 erased subject(s) with proof kept; would purge 0 (0 journal entries)",
        f"retention: next proof period ends {until.isoformat()} (er-ret)",
    ]
    assert printed[2].startswith("retention: would purge 0 rejected record(s) and 0 dead letter")
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
