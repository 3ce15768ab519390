"""What was known when, and the subject's history and export, against the real servers."""

from __future__ import annotations

import base64
import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import fastavro
import httpx
import pytest

from projections import history_pages
from schemas.events import rfc3339
from services.catalogue import load_catalogue
from services.config import Settings
from services.retention import purge_due
from services.tokens import decode_token

pytestmark = pytest.mark.integration

MICRO = timedelta(microseconds=1)
COMMON = ("event_id", "subject_id", "occurred_at", "recorded_at", "source", "actor")


async def post(api: httpx.AsyncClient, subject: str, path: str, body: dict[str, Any]) -> Any:
    response = await api.post(f"/v1/subjects/{subject}/{path}", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def projected(api: httpx.AsyncClient, created: dict[str, Any]) -> None:
    """Wait until the projection has applied the write (an unlink checks the projected link)."""
    subject, token = created["subject_id"], created["token"]
    response = await api.get(f"/v1/subjects/{subject}/events", params={"min_token": token})
    assert response.status_code == 200, response.text


def recorded(created: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(created["recorded_at"])


def position(created: dict[str, Any]) -> dict[str, int]:
    partition, next_offset = decode_token(created["token"])
    return {"partition": partition, "offset": next_offset - 1}


async def decision_at(
    api: httpx.AsyncClient, at: datetime, token: str, **who: str
) -> dict[str, Any]:
    params = {"purpose": "newsletter", "channel": "email", "at": rfc3339(at), **who}
    response = await api.get("/v1/decision", params={**params, "min_token": token})
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def test_decisions_at_instants_between_grants_and_withdrawals(
    module_api: httpx.AsyncClient,
) -> None:
    api, s = module_api, "asof-1"
    grant = await post(api, s, "consents", {"purpose": "newsletter", "channel": "email"})
    withdrawal = await post(api, s, "withdrawals", {"purpose": "newsletter"})
    regrant = await post(api, s, "consents", {"purpose": "newsletter", "channel": "email"})
    t1, t2, t3 = recorded(grant), recorded(withdrawal), recorded(regrant)
    assert t1 < t2 < t3
    token = regrant["token"]
    cases = [
        (t1 - MICRO, "no_consent", [], None),
        (t1, "consent_given", [grant["event_id"]], position(grant)),
        (t2 - MICRO, "consent_given", [grant["event_id"]], position(grant)),
        (t2, "consent_withdrawn", [withdrawal["event_id"]], position(withdrawal)),
        (t3 - MICRO, "consent_withdrawn", [withdrawal["event_id"]], position(withdrawal)),
        (t3, "consent_given", [regrant["event_id"]], position(regrant)),
    ]
    for at, reason, evidence, where in cases:
        answer = await decision_at(api, at, token, subject_id=s)
        assert (answer["reason"], answer["evidence"]) == (reason, evidence), rfc3339(at)
        assert answer["at"] == rfc3339(at) and answer["as_of_position"] == where
        assert "token" not in answer and answer["subject_id"] == s

    now = datetime.now(UTC)
    asked = {"subject_id": s, "purpose": "newsletter", "channel": "email"}
    live = (await api.get("/v1/decision", params=asked)).json()
    then = await decision_at(api, now, token, subject_id=s)
    assert (then["allowed"], then["reason"], then["evidence"]) == (
        live["allowed"],
        live["reason"],
        live["evidence"],
    )

    state = await api.get(f"/v1/subjects/{s}/consent", params={"at": rfc3339(t2)})
    assert state.status_code == 200, state.text
    body = state.json()
    (newsletter,) = [p for p in body["purposes"] if p["purpose"] == "newsletter"]
    assert newsletter["channels"]["email"]["reason"] == "consent_withdrawn"
    assert newsletter["channels"]["email"]["event_id"] == withdrawal["event_id"]
    assert body["at"] == rfc3339(t2) and body["as_of_position"] == position(withdrawal)
    assert "token" not in body


async def test_a_late_event_counts_from_when_it_was_recorded(module_api: httpx.AsyncClient) -> None:
    api, s = module_api, "asof-late"
    grant = await post(api, s, "consents", {"purpose": "newsletter", "channel": "email"})
    happened = rfc3339(recorded(grant) - timedelta(days=3))
    late = await post(api, s, "withdrawals", {"purpose": "newsletter", "occurred_at": happened})
    token = late["token"]

    before = await decision_at(api, recorded(late) - MICRO, token, subject_id=s)
    assert before["reason"] == "consent_given"  # the ledger did not know of it yet
    after = await decision_at(api, recorded(late), token, subject_id=s)
    assert after["reason"] == "consent_withdrawn"  # later in the log: it wins

    history = await api.get(f"/v1/subjects/{s}/history")
    events = history.json()["events"]
    assert [e["event_id"] for e in events] == [grant["event_id"], late["event_id"]]
    assert events[1]["occurred_at"] == happened < events[0]["occurred_at"]
    assert events[1]["recorded_at"] > events[0]["recorded_at"]


async def test_an_address_is_looked_up_as_linked_at_the_instant(
    module_api: httpx.AsyncClient,
) -> None:
    api, email = module_api, "grace@example.org"
    linked_a = await post(api, "asof-a", "identifiers", {"type": "email", "value": email})
    await projected(api, await post(api, "asof-a", "consents", {"purpose": "newsletter"}))
    response = await api.request(
        "DELETE", "/v1/subjects/asof-a/identifiers", json={"type": "email", "value": email}
    )
    assert response.status_code == 201, response.text
    unlinked = response.json()
    await projected(api, unlinked)
    linked_b = await post(api, "asof-b", "identifiers", {"type": "email", "value": email})
    token = linked_b["token"]

    at_a = await decision_at(api, recorded(unlinked) - MICRO, token, email=email)
    assert (at_a["subject_id"], at_a["reason"]) == ("asof-a", "consent_given")
    gone = await decision_at(api, recorded(unlinked), token, email=email)
    assert (gone["subject_id"], gone["reason"], gone["as_of_position"]) == (
        None,
        "unknown_subject",
        None,
    )
    at_b = await decision_at(api, recorded(linked_b), token, email=email)
    assert (at_b["subject_id"], at_b["reason"]) == ("asof-b", "no_consent")
    now = await decision_at(api, datetime.now(UTC), token, email=email)
    assert now["subject_id"] == "asof-b"
    before = await decision_at(api, recorded(linked_a) - MICRO, token, email=email)
    assert before["subject_id"] is None

    state = await api.get(
        "/v1/subjects/by-identifier/consent",
        params={"email": email, "at": rfc3339(recorded(unlinked))},
    )
    assert state.status_code == 404 and state.json()["errors"][0]["field"] == "email"
    state = await api.get(
        "/v1/subjects/by-identifier/consent",
        params={"email": email, "at": rfc3339(recorded(linked_a))},
    )
    assert state.json()["subject_id"] == "asof-a"


@pytest.mark.parametrize(
    ("path", "params", "field", "detail"),
    [
        (
            "/v1/decision",
            {"subject_id": "x", "purpose": "newsletter", "channel": "email", "at": "2026-01-01"},
            "at",
            "RFC 3339",
        ),
        (
            "/v1/decision",
            {"subject_id": "x", "purpose": "newsletter", "channel": "email", "at": "FUTURE"},
            "at",
            "in the future",
        ),
        ("/v1/subjects/x/consent", {"at": "yesterday"}, "at", "RFC 3339"),
        ("/v1/subjects/x/consent", {"at": "FUTURE"}, "at", "in the future"),
        ("/v1/subjects/x/history", {"format": "xml"}, "format", "'xml' is not accepted"),
        ("/v1/subjects/x/history", {"fmt": "csv"}, "fmt", "not a known field"),
        ("/v1/subjects/x/export", {"format": "csv"}, "format", "not a known field"),
    ],
)
async def test_bad_at_or_format_names_the_field(
    module_api: httpx.AsyncClient, path: str, params: dict[str, str], field: str, detail: str
) -> None:
    if params.get("at") == "FUTURE":
        params = {**params, "at": rfc3339(datetime.now(UTC) + timedelta(minutes=1))}
    response = await module_api.get(path, params=params)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    (error,) = response.json()["errors"]
    assert error["field"] == field and detail in error["detail"]
    if path.endswith("history") and field == "format":
        assert error["accepted"] == ["json", "csv", "avro"]


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
        assert {"type": e["type"], **_as_json(record["event"])} == e["payload"]


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


async def test_erasure_and_suppression_count_from_when_they_were_recorded(
    module_api: httpx.AsyncClient,
) -> None:
    """The erasure and the suppression it leaves are rules from other engineers' events: the
    as-of answer applies them only from the instant the ledger recorded them."""
    api, email = module_api, "erased.person@example.org"
    await post(api, "gone-1", "identifiers", {"type": "email", "value": email})
    granted = await post(api, "gone-1", "consents", {"purpose": "newsletter"})
    await projected(api, granted)
    other = await post(api, "next-1", "consents", {"purpose": "newsletter"})
    erased = await post(api, "gone-1", "erasure", {"ground": "consent_withdrawn"})
    await projected(api, erased)
    relinked = await post(api, "next-1", "identifiers", {"type": "email", "value": email})
    token = relinked["token"]

    before = await decision_at(api, recorded(erased) - MICRO, token, subject_id="gone-1")
    assert before["reason"] == "consent_given"
    after = await decision_at(api, recorded(erased), token, subject_id="gone-1")
    assert (after["reason"], after["evidence"]) == ("erased", [erased["event_id"]])

    unheld = await decision_at(api, recorded(relinked) - MICRO, token, subject_id="next-1")
    assert (unheld["reason"], unheld["evidence"]) == ("consent_given", [other["event_id"]])
    held = await decision_at(api, recorded(relinked), token, subject_id="next-1")
    assert (held["reason"], held["evidence"]) == ("suppressed", [relinked["event_id"]])
    live = await api.get(
        "/v1/decision", params={"subject_id": "next-1", "purpose": "newsletter", "channel": "email"}
    )
    assert live.json()["reason"] == "suppressed"

    doc = (await api.get("/v1/subjects/gone-1/export")).json()
    assert doc["identities"] == []
    assert [e["type"] for e in doc["history"]] == [
        "IdentifierLinked",
        "ConsentGranted",
        "SubjectErased",
    ]


async def test_before_an_erasure_whose_proof_was_purged_the_answer_is_gone(
    module_api: httpx.AsyncClient, module_settings: Settings
) -> None:
    api, s = module_api, "gone-2"
    granted = await post(api, s, "consents", {"purpose": "newsletter"})
    erased = await post(api, s, "erasure", {"ground": "objection"})
    await projected(api, erased)
    conn = await asyncpg.connect(module_settings.database_url)
    try:
        catalogue = load_catalogue(module_settings.catalogue_file)
        later = datetime.now(UTC) + timedelta(days=365 * 20)
        outcome = await purge_due(conn, module_settings.topic, catalogue, later, dry_run=False)
    finally:
        await conn.close()
    assert s in [subject for subject, _ in outcome.purged]

    params = {"subject_id": s, "purpose": "newsletter", "channel": "email"}
    gone = await api.get("/v1/decision", params={**params, "at": rfc3339(recorded(granted))})
    assert gone.status_code == 410, gone.text
    assert gone.json()["errors"][0]["field"] == "at"
    state = await api.get(f"/v1/subjects/{s}/consent", params={"at": rfc3339(recorded(granted))})
    assert state.status_code == 410
    now = await decision_at(api, datetime.now(UTC), erased["token"], subject_id=s)
    assert (now["reason"], now["evidence"]) == ("erased", [erased["event_id"]])
