"""Notices, re-consent and signed receipts against the real servers: publishing is idempotent
by version, a material change outdates older consents (single and batch decisions agree, the
re-consent list names who to ask) until a new grant, and receipts verify with an independent
JOSE library using the keys the ledger serves. A bad notice or receipt request is checked
in-process: tests/unit/services/api/test_notice_and_receipt_input.py."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from joserfc import jws
from joserfc.errors import SecurityWarning
from joserfc.jwk import KeySet

pytestmark = pytest.mark.integration

NL = "newsletter"


def notice_body(version: str, effective_from: datetime, **extra: Any) -> dict[str, Any]:
    text = f"Privacy notice {version}"
    return {
        "version": version,
        "effective_from": effective_from.isoformat().replace("+00:00", "Z"),
        "text_sha256": hashlib.sha256(text.encode()).hexdigest(),
        "url": f"https://example.com/privacy/{version}",
        "material": True,
        "purposes": [NL],
        "language": "fi",
        **extra,
    }


async def publish(api: httpx.AsyncClient, body: dict[str, Any], status: int = 201) -> Any:
    response = await api.post("/v1/notices", json=body)
    assert response.status_code == status, response.text
    return response.json()


async def grant(api: httpx.AsyncClient, subject: str, version: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"purpose": NL, "channel": "email", "method": "form"}
    if version is not None:
        body["notice_version"] = version
    response = await api.post(f"/v1/subjects/{subject}/consents", json=body)
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def decision(api: httpx.AsyncClient, subject: str, token: str | None = None) -> Any:
    params = {"subject_id": subject, "purpose": NL, "channel": "email"}
    if token is not None:
        params["min_token"] = token
    response = await api.get("/v1/decision", params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def batch(api: httpx.AsyncClient, subjects: list[str]) -> dict[str, str | None]:
    response = await api.post(
        "/v1/decisions/batch", json={"purpose": NL, "channel": "email", "subjects": subjects}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    return {
        **dict.fromkeys(body["allowed"]),
        **{d["recipient"]: d["reason"] for d in body["denied"]},
    }


async def reconsent(api: httpx.AsyncClient, limit: int = 1000) -> list[dict[str, Any]]:
    """Every page of the newsletter's re-consent list, following `next`."""
    found: list[dict[str, Any]] = []
    url: str | None = f"/v1/reconsent?purpose={NL}&limit={limit}"
    while url is not None:
        response = await api.get(url)
        assert response.status_code == 200, response.text
        body = response.json()
        found += body["subjects"]
        url = body["next"]
        assert len(found) < 100
    return found


async def test_notices_publish_once_per_version_and_list(api: httpx.AsyncClient) -> None:
    v1 = notice_body("2023-05-04", datetime(2023, 5, 4, tzinfo=UTC), material=False)
    first = await publish(api, v1)
    assert first["type"] == "NoticePublished" and first["version"] == "2023-05-04"
    again = await api.post("/v1/notices", json={**v1, "occurred_at": first["published_at"]})
    assert again.status_code == 200, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["event_id"] == first["event_id"]
    clash = await api.post("/v1/notices", json={**v1, "url": "https://example.com/other"})
    assert clash.status_code == 409, clash.text
    problem = clash.json()
    assert problem["type"] == "urn:consent-ledger:problem:notice-version-exists"
    assert [e["field"] for e in problem["errors"]] == ["url"]
    listed = await api.get("/v1/notices", params={"min_token": first["token"]})
    assert listed.status_code == 200
    assert listed.json()["notices"] == [{k: v for k, v in first.items()
                                         if k not in ("type", "token")}]  # fmt: skip


async def test_a_material_change_asks_for_consent_again(api: httpx.AsyncClient) -> None:
    now = datetime.now(UTC)
    await publish(api, notice_body("v1", now - timedelta(days=400)))
    old = {s: await grant(api, s, "v1") for s in ("rc-1", "rc-2", "rc-3")}
    bare = await grant(api, "rc-bare", None)  # no notice version: judged by its own time
    for subject, answer in [*old.items(), ("rc-bare", bare)]:
        assert (await decision(api, subject, answer["token"]))["allowed"]
    later = await publish(api, notice_body("v3", now + timedelta(days=30)))
    assert (await decision(api, "rc-1", later["token"]))["reason"] == "consent_given"

    # takes effect now: after every grant so far, before every question that follows
    v2 = await publish(api, notice_body("v2", datetime.now(UTC)))
    outdated = await decision(api, "rc-1", v2["token"])
    assert (outdated["allowed"], outdated["reason"]) == (False, "consent_outdated")
    assert outdated["evidence"] == [old["rc-1"]["event_id"], v2["event_id"]]
    assert (await decision(api, "rc-bare"))["reason"] == "consent_outdated"
    fresh = await grant(api, "rc-new", "v2")
    assert (await decision(api, "rc-new", fresh["token"]))["reason"] == "consent_given"

    listed = await reconsent(api, limit=2)
    assert [e["subject_id"] for e in listed] == ["rc-1", "rc-2", "rc-3", "rc-bare"]
    assert listed[0]["channels"]["email"] == {
        "event_id": old["rc-1"]["event_id"],
        "notice_version": "v1",
        "consented_at": old["rc-1"]["recorded_at"],
    }
    page = (await api.get(f"/v1/reconsent?purpose={NL}")).json()
    assert page["notice"]["version"] == "v2" and page["next"] is None
    subjects = ["rc-1", "rc-2", "rc-3", "rc-bare", "rc-new", "rc-nobody"]
    assert await batch(api, subjects) == {
        "rc-1": "consent_outdated",
        "rc-2": "consent_outdated",
        "rc-3": "consent_outdated",
        "rc-bare": "consent_outdated",
        "rc-new": None,
        "rc-nobody": "no_consent",
    }

    regranted = await grant(api, "rc-1", "v2")
    again = await decision(api, "rc-1", regranted["token"])
    assert (again["allowed"], again["reason"]) == (True, "consent_given")
    assert again["evidence"] == [regranted["event_id"]]
    objected = await api.post("/v1/subjects/rc-2/objections", json={"kind": "direct_marketing"})
    assert objected.status_code == 201
    await decision(api, "rc-2", objected.json()["token"])
    assert [e["subject_id"] for e in await reconsent(api)] == ["rc-3", "rc-bare"]
    answers = await batch(api, ["rc-1", "rc-2", "rc-3"])
    assert answers == {
        "rc-1": None,
        "rc-2": "objected_direct_marketing",
        "rc-3": "consent_outdated",
    }
    state = await api.get("/v1/subjects/rc-3/consent")
    [nl] = [p for p in state.json()["purposes"] if p["purpose"] == NL]
    assert nl["status"] == "consent_outdated"

    wrong = await api.get("/v1/reconsent", params={"purpose": "marketing_own"})
    assert wrong.status_code == 422
    assert NL in wrong.json()["errors"][0]["accepted"]


async def test_receipts_verify_with_the_published_keys(api: httpx.AsyncClient) -> None:
    v1 = await publish(api, notice_body("2023-05-04", datetime(2023, 5, 4, tzinfo=UTC)))
    granted = await grant(api, "rcpt-1", "2023-05-04")
    withdrawn = await api.post(
        "/v1/subjects/rcpt-1/withdrawals", json={"method": "unsubscribe_link"}
    )
    assert withdrawn.status_code == 201
    jwks = await api.get("/.well-known/jwks.json")
    assert jwks.status_code == 200
    assert jwks.headers["content-type"].startswith("application/jwk-set+json")
    [key] = jwks.json()["keys"]
    assert {k: key[k] for k in ("kty", "crv")} == {"kty": "OKP", "crv": "Ed25519"}
    assert "d" not in key  # the private part never leaves
    keys = KeySet.import_key_set(jwks.json())

    for event, fmt in [
        (granted, "iso27560"),
        (granted, "kantara"),
        (withdrawn.json(), "iso27560"),
        (withdrawn.json(), "kantara"),
    ]:
        response = await api.get(
            f"/v1/receipts/{event['event_id']}",
            params={"format": fmt, "min_token": event["token"]},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["format"], body["kid"]) == (fmt, key["kid"])
        with pytest.warns(SecurityWarning, match="EdDSA"):  # RFC 9864's "Ed25519" is newer
            verified = jws.deserialize_compact(body["jws"], keys, algorithms=["EdDSA"])
        assert json.loads(verified.payload) == body["receipt"]
        assert verified.headers()["kid"] == key["kid"]
        assert "@" not in json.dumps(body["receipt"])

    iso = (await api.get(f"/v1/receipts/{granted['event_id']}")).json()["receipt"]
    assert iso["subject_id"] == "rcpt-1" and iso["state"] == "dpv:ConsentGiven"
    assert iso["notice"]["url"] == v1["url"] and iso["notice"]["text_sha256"] == v1["text_sha256"]
    assert iso["purposes"][0]["dpv"] == "dpv:DirectMarketing"
    kantara = (await api.get(f"/v1/receipts/{granted['event_id']}?format=kantara")).json()
    assert kantara["receipt"]["piiPrincipalId"] == "rcpt-1"
    assert kantara["receipt"]["publicKey"] == key["x"]


async def test_receipts_exist_for_consent_events_only(api: httpx.AsyncClient) -> None:
    objected = await api.post("/v1/subjects/rcpt-2/objections", json={"kind": "direct_marketing"})
    assert objected.status_code == 201
    event_id, token = objected.json()["event_id"], objected.json()["token"]
    other = await api.get(f"/v1/receipts/{event_id}", params={"min_token": token})
    assert other.status_code == 422
    assert other.json()["errors"][0]["field"] == "event_id"
    assert other.json()["errors"][0]["accepted"] == ["ConsentGranted", "ConsentWithdrawn"]
    unknown = await api.get("/v1/receipts/00000000-0000-4000-8000-000000000000")
    assert unknown.status_code == 404
    assert unknown.json()["type"] == "urn:consent-ledger:problem:unknown-event"
