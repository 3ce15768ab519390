"""The access log over real sockets: every read of a subject's data is logged with the key
that read it, GET /v1/access-log shows them to the audit scope, and a read that cannot be
logged is refused. Its bad queries and its scope are checked in-process:
tests/unit/services/api/test_access_log_input.py."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import asyncpg
import httpx
import pytest

from services.config import Settings
from services.identity.api_keys import AUDIT, DECIDE
from tests.integration.access_support import PROBLEM, client_of, made_key

pytestmark = pytest.mark.integration


def now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


async def recorded(api: httpx.AsyncClient, subject: str, email: str) -> tuple[str, str]:
    """An identifier and a grant for `subject`: the grant's token and event id."""
    linked = await api.post(
        f"/v1/subjects/{subject}/identifiers", json={"type": "email", "value": email}
    )
    assert linked.status_code == 201, linked.text
    granted = await api.post(f"/v1/subjects/{subject}/consents", json={"purpose": "newsletter"})
    assert granted.status_code == 201, granted.text
    return granted.json()["token"], granted.json()["event_id"]


async def test_reads_of_a_subject_are_logged_with_their_key(
    module_api: httpx.AsyncClient, module_settings: Settings
) -> None:
    subject = "al-" + uuid.uuid4().hex[:8]
    email = f"{subject}@example.org"
    token, grant = await recorded(module_api, subject, email)
    dpo_id, dpo = await made_key(module_settings, module_api, AUDIT, name="dpo")
    _, crm = await made_key(module_settings, module_api, DECIDE, name="crm")
    root = f"/v1/subjects/{subject}"
    decision = {"subject_id": subject, "purpose": "newsletter", "channel": "email"}
    before = datetime.now(UTC)
    async with client_of(module_api, crm) as marketing:
        live = await marketing.get("/v1/decision", params={**decision, "min_token": token})
        assert live.status_code == 200, live.text
    reads = [
        (f"{root}/consent", {"min_token": token}, "/v1/subjects/{subject_id}/consent"),
        (f"{root}/consent", {"at": now()}, "/v1/subjects/{subject_id}/consent"),
        (f"{root}/events", {}, "/v1/subjects/{subject_id}/events"),
        (f"{root}/history", {"format": "csv"}, "/v1/subjects/{subject_id}/history"),
        (f"{root}/export", {}, "/v1/subjects/{subject_id}/export"),
        (f"/v1/receipts/{grant}", {}, "/v1/receipts/{event_id}"),
        (f"/audit/subjects/{subject}", {}, "/audit/subjects/{subject_id}"),
        ("/v1/decision", {**decision, "at": now()}, "/v1/decision"),
        ("/v1/subjects/by-identifier/events", {"email": email}, "/v1/subjects/{subject_id}/events"),
        (f"{root}/verify", {}, "/v1/subjects/{subject_id}/verify"),
    ]
    async with client_of(module_api, dpo) as auditor:
        for path, query, _ in reads:
            response = await auditor.get(path, params=query)
            assert response.status_code == 200, f"{path}: {response.text}"
        logged = await auditor.get("/v1/access-log", params={"subject_id": subject})
        assert logged.status_code == 200, logged.text
        body = logged.json()
        assert body["subject_id"] == subject and body["next"] is None
        entries = body["reads"]
        assert [(e["method"], e["route"]) for e in entries] == [("GET", r) for _, _, r in reads]
        assert {(e["key_id"], e["key_name"]) for e in entries} == {(dpo_id, "dpo")}
        moments = [datetime.fromisoformat(e["at"]) for e in entries]
        assert moments == sorted(moments) and before <= moments[0] <= datetime.now(UTC)

        first = await auditor.get("/v1/access-log", params={"subject_id": subject, "limit": 3})
        page = first.json()
        assert page["reads"] == entries[:3] and page["next"]
        paged = list(page["reads"])
        while page["next"] is not None:
            page = (await auditor.get(page["next"])).json()
            assert 1 <= len(page["reads"]) <= 3
            paged += page["reads"]
        assert paged == entries

        other = await auditor.get("/v1/access-log", params={"subject_id": "al-nobody"})
        assert other.json()["reads"] == []


async def test_a_read_that_cannot_be_logged_is_refused(
    api: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    subject = "al-closed"
    token, grant = await recorded(api, subject, "closed@example.org")
    root = f"/v1/subjects/{subject}"
    assert (await api.get(f"{root}/events", params={"min_token": token})).status_code == 200
    await db.execute("ALTER TABLE access_log RENAME TO access_log_gone")
    for path in (
        f"{root}/events",
        f"{root}/history",
        f"{root}/export",
        f"{root}/consent",
        f"/v1/receipts/{grant}",
    ):
        response = await api.get(path)
        assert response.status_code == 503, f"{path}: {response.text}"
        assert response.headers["content-type"] == PROBLEM and "retry-after" in response.headers
        assert "the read could not be logged" in response.json()["detail"]
        assert "ConsentGranted" not in response.text
    page = await api.get(f"/audit/subjects/{subject}")
    assert page.status_code == 503 and "text/html" in page.headers["content-type"]
    assert "ConsentGranted" not in page.text


async def test_reads_of_rights_requests_are_logged_per_subject(
    module_api: httpx.AsyncClient, module_settings: Settings
) -> None:
    subject = "al-" + uuid.uuid4().hex[:8]
    received = await module_api.post("/v1/requests", json={"subject_id": subject, "kind": "access"})
    assert received.status_code == 201, received.text
    request_id, token = received.json()["request_id"], received.json()["token"]
    _, dpo = await made_key(module_settings, module_api, AUDIT, name="dpo-requests")
    async with client_of(module_api, dpo) as auditor:
        shown = await auditor.get(f"/v1/requests/{request_id}", params={"min_token": token})
        assert shown.status_code == 200, shown.text
        listed = await auditor.get("/v1/requests", params={"status": "open", "limit": 1000})
        assert listed.status_code == 200, listed.text
        assert subject in {r["subject_id"] for r in listed.json()["requests"]}
        logged = await auditor.get("/v1/access-log", params={"subject_id": subject})
    routes = [e["route"] for e in logged.json()["reads"]]
    assert routes == ["/v1/requests/{request_id}", "/v1/requests"]
