"""The subject's history (JSON, CSV, Avro) and export against the real servers."""

from __future__ import annotations

import base64
import csv
import io
import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
import fastavro
import httpx
import pytest

from projections import history_pages
from schemas.events import rfc3339
from services.config import Settings
from tests.integration.as_of_support import COMMON, post, projected

pytestmark = pytest.mark.integration


def _as_json(value: Any) -> Any:
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dict):
        return {k: _as_json(v) for k, v in value.items()}
    return value


async def _subject_with_history(api: httpx.AsyncClient, s: str, n: int) -> str:
    """Five events: an e-mail address linked, a grant, a phone number linked and unlinked,
    an objection; `n` keeps the identifiers of each test's subject apart."""
    email = {"type": "email", "value": f" Ada.Lovelace+{n}@Example.COM "}
    await post(api, s, "identifiers", email)
    source = {"system": "web", "collection_point": "a, b"}
    grant = {"purpose": "newsletter", "notice_version": "2023-05-04", "source": source}
    await post(api, s, "consents", grant)
    phone = {"type": "phone", "value": f"+358 40 123 456{n}"}
    await projected(api, await post(api, s, "identifiers", phone))
    response = await api.request("DELETE", f"/v1/subjects/{s}/identifiers", json=phone)
    assert response.status_code == 201, response.text
    last = await post(api, s, "objections", {"kind": "direct_marketing", "channel": "sms"})
    return str(last["token"])


async def test_history_in_json_csv_and_avro(
    module_api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    api, s = module_api, "hist-1"
    token = await _subject_with_history(api, s, 1)
    monkeypatch.setattr(history_pages, "PAGE_SIZE", 2)  # five events: three pages
    events = (await api.get(f"/v1/subjects/{s}/events", params={"min_token": token})).json()[
        "events"
    ]
    assert len(events) == 5

    as_json = await api.get(f"/v1/subjects/{s}/history", params={"format": "json"})
    assert as_json.status_code == 200 and as_json.headers["content-type"] == "application/json"
    entries = as_json.json()["events"]
    assert as_json.json()["subject_id"] == s
    assert [{k: v for k, v in e.items() if "_at" not in k} for e in entries] == events
    for entry in entries:
        times = (entry["payload"]["occurred_at"], entry["payload"]["recorded_at"])
        assert (entry["occurred_at"], entry["recorded_at"]) == times
    assert (await api.get(f"/v1/subjects/{s}/history")).json() == as_json.json()

    as_csv = await api.get(f"/v1/subjects/{s}/history", params={"format": "csv"})
    assert as_csv.headers["content-type"] == "text/csv; charset=utf-8"
    assert f'filename="history-{s}.csv"' in as_csv.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [r["event_id"] for r in rows] == [e["event_id"] for e in events]
    for r, e in zip(rows, events, strict=True):
        payload = e["payload"]
        assert (r["type"], r["offset"], r["recorded_at"]) == (
            e["type"],
            str(e["offset"]),
            payload["recorded_at"],
        )
        assert r["source_collection_point"] == (payload["source"]["collection_point"] or "")
        data = {k: v for k, v in payload.items() if k not in (*COMMON, "type", "notice_version")}
        assert json.loads(r["data"]) == data

    as_avro = await api.get(f"/v1/subjects/{s}/history", params={"format": "avro"})
    assert as_avro.headers["content-type"] == "application/avro"
    assert f'filename="history-{s}.avro"' in as_avro.headers["content-disposition"]
    reader = fastavro.reader(io.BytesIO(as_avro.content))
    records = list(reader)
    assert len(records) == len(events)
    for record, e in zip(records, events, strict=True):
        assert isinstance(record, dict)
        assert (record["partition"], record["offset"], record["event_type"]) == (
            e["partition"],
            e["offset"],
            e["type"],
        )
        event = dict(record["event"])
        if event.get("context", 0) is None:  # an Avro reader fills the field's null default in
            del event["context"]
        assert {"type": e["type"], **_as_json(event)} == e["payload"]


async def test_export_answers_access_and_portability(
    module_api: httpx.AsyncClient, module_settings: Settings
) -> None:
    api, s = module_api, "exp-1"
    token = await _subject_with_history(api, s, 2)
    response = await api.get(f"/v1/subjects/{s}/export", params={"min_token": token})
    assert response.status_code == 200, response.text
    assert f'filename="export-{s}.json"' in response.headers["content-disposition"]
    doc = response.json()
    assert doc["subject_id"] == s and doc["controller"] == module_settings.controller_name
    assert doc["export_version"] == 1
    assert datetime.fromisoformat(doc["generated_at"]) <= datetime.now(UTC)
    email, phone = doc["identities"]
    assert (email["type"], email["value"], email["linked"], email["unlinked_at"]) == (
        "email",
        "ada.lovelace+2@example.com",
        True,
        None,
    )
    assert (phone["type"], phone["value"], phone["linked"]) == ("phone", "+358401234562", False)
    assert phone["unlinked_at"] > phone["linked_at"]

    consent = (await api.get(f"/v1/subjects/{s}/consent")).json()
    assert {k: v for k, v in doc["state"].items() if k != "token"} == {
        k: v for k, v in consent.items() if k not in ("subject_id", "token")
    }
    assert doc["state"]["token"] == consent["token"]
    history = (await api.get(f"/v1/subjects/{s}/history")).json()["events"]
    assert doc["history"] == history
    purposes = {p["id"]: p for p in doc["purposes"]}
    assert purposes["legal_obligation"]["retention"] == "P10Y"
    assert all(p["recipients"] and p["retention"] and p["basis"] for p in purposes.values())

    by_email = await api.get(
        "/v1/subjects/by-identifier/export", params={"email": "ADA.lovelace+2@example.com"}
    )
    assert by_email.json()["subject_id"] == s
    by_history = await api.get(
        "/v1/subjects/by-identifier/history",
        params={"email": "ada.lovelace+2@example.com", "format": "csv"},
    )
    assert by_history.status_code == 200 and by_history.text.count("\r\n") == 6

    # crypto-shredding: without the subject's data key nothing can be decrypted any more
    conn = await asyncpg.connect(module_settings.database_url)
    try:
        await conn.execute("DELETE FROM subject_keys WHERE subject_id = $1", s)
    finally:
        await conn.close()
    erased = (await api.get(f"/v1/subjects/{s}/export")).json()
    assert erased["identities"] == [] and erased["history"] == history


async def test_an_unknown_subject_has_an_empty_history_and_export(
    module_api: httpx.AsyncClient,
) -> None:
    doc = (await module_api.get("/v1/subjects/nobody-9/export")).json()
    assert (doc["identities"], doc["history"]) == ([], [])
    avro_file = await module_api.get("/v1/subjects/nobody-9/history", params={"format": "avro"})
    assert list(fastavro.reader(io.BytesIO(avro_file.content))) == []
    missing = await module_api.get(
        "/v1/subjects/by-identifier/export", params={"email": "nobody@example.org"}
    )
    assert missing.status_code == 404 and missing.json()["errors"][0]["field"] == "email"
