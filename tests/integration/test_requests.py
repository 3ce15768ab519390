"""Rights requests against the real servers: each step recorded and projected, the deadline
and its extension, open and overdue lists with paging, the metric, the refusals; and a
restriction lift that must say when the subject was told. Bad input that names no stored
request is checked in-process: tests/unit/services/api/test_request_input.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from projections.periods import due_on

pytestmark = pytest.mark.integration


def ago(days: int) -> str:
    moment = datetime.now(UTC) - timedelta(days=days)
    return moment.isoformat().replace("+00:00", "Z")


async def receive(api: httpx.AsyncClient, subject: str, kind: str, **body: Any) -> Any:
    answer = await api.post("/v1/requests", json={"subject_id": subject, "kind": kind, **body})
    assert answer.status_code == 201, answer.text
    return answer.json()


async def step(
    api: httpx.AsyncClient, received: Any, name: str, body: dict[str, Any], status: int = 201
) -> Any:
    answer = await api.post(
        f"/v1/requests/{received['request_id']}/{name}",
        params={"min_token": received["token"]},
        json=body,
    )
    assert answer.status_code == status, answer.text
    return answer.json()


async def metric(api: httpx.AsyncClient, name: str) -> int:
    text = (await api.get("/metrics")).text
    [line] = [x for x in text.splitlines() if x.startswith(name + " ")]
    return int(line.split()[1])


async def test_a_request_from_receipt_to_completion(api: httpx.AsyncClient) -> None:
    late = await receive(api, "rq-1", "access", occurred_at=ago(40), reference="T-100")
    received_at = datetime.now(UTC) - timedelta(days=40)
    assert late["type"] == "RightsRequestReceived"
    assert late["due_on"] == due_on(received_at).isoformat()
    await step(api, late, "verify", {"evidence": "signed-in account"})
    refused = await step(api, late, "extend", {"reason": "many requests"}, status=409)
    assert refused["type"] == "urn:consent-ledger:problem:extension-not-allowed"

    fresh = await receive(api, "rq-2", "portability")
    extended = await step(api, fresh, "extend", {"reason": "a large export", "months": 1})
    assert extended["type"] == "RightsRequestExtended"
    seen = {**fresh, "token": extended["token"]}  # steps check the projected request
    too_far = await step(api, seen, "extend", {"reason": "still large", "months": 2}, 409)
    assert "at most 2" in too_far["detail"]
    shown = await api.get(
        f"/v1/requests/{fresh['request_id']}", params={"min_token": extended["token"]}
    )
    assert shown.status_code == 200
    assert shown.json()["extended_months"] == 1
    assert shown.json()["due_on"] == due_on(datetime.now(UTC), 1).isoformat()
    assert shown.json()["extension_reason"] == "a large export"

    overdue = await api.get("/v1/requests", params={"status": "overdue"})
    assert [r["request_id"] for r in overdue.json()["requests"]] == [late["request_id"]]
    [entry] = overdue.json()["requests"]
    assert entry["overdue"] is True and entry["verified_at"] is not None
    assert entry["kind"] == "access" and entry["reference"] == "T-100"
    assert await metric(api, "ledger_rights_requests_overdue") == 1
    assert await metric(api, "ledger_rights_requests_open") == 2

    done = await step(api, late, "complete", {"evidence": "export sent"})
    assert done["type"] == "RightsRequestCompleted"
    again = await step(
        api, {**late, "token": done["token"]}, "refuse", {"reason": "changed my mind"}, 409
    )
    assert again["type"] == "urn:consent-ledger:problem:request-closed"
    opened = await api.get("/v1/requests", params={"status": "open", "min_token": done["token"]})
    assert opened.status_code == 422, "GET /v1/requests takes no min_token"
    shown = await api.get(f"/v1/requests/{late['request_id']}", params={"min_token": done["token"]})
    assert shown.json()["status"] == "completed"
    assert len(shown.json()["events"]) == 3
    assert await metric(api, "ledger_rights_requests_overdue") == 0
    closed = await api.get("/v1/requests", params={"status": "closed"})
    assert [r["request_id"] for r in closed.json()["requests"]] == [late["request_id"]]


async def test_lists_page_by_deadline(api: httpx.AsyncClient) -> None:
    received = [await receive(api, f"rq-p{n}", "objection", occurred_at=ago(n)) for n in range(5)]
    last = received[-1]
    await step(api, last, "verify", {})  # waits until the last receipt is projected
    seen: list[str] = []
    url: str | None = "/v1/requests?status=open&limit=2"
    while url is not None:
        page = (await api.get(url)).json()
        assert len(page["requests"]) <= 2
        seen += [r["request_id"] for r in page["requests"]]
        url = page["next"]
    assert seen == [r["request_id"] for r in reversed(received)], "earliest deadline first"


async def test_refusals_and_bad_input(api: httpx.AsyncClient) -> None:
    received = await receive(api, "rq-x", "erasure")
    no_reason = await step(api, received, "refuse", {}, status=422)
    assert no_reason["errors"][0]["field"] == "reason"
    unknown = await api.post("/v1/requests/00000000-0000-4000-8000-000000000000/complete", json={})
    assert unknown.status_code == 404
    assert unknown.json()["type"] == "urn:consent-ledger:problem:unknown-request"

    # an erasure may name the request it answers, but only one of its own subject
    erased = await api.post(
        "/v1/subjects/rq-x/erasure",
        params={},
        json={"ground": "objection", "request_id": received["request_id"]},
    )
    assert erased.status_code == 201, erased.text
    foreign = await api.post(
        "/v1/subjects/rq-y/erasure",
        json={"ground": "objection", "request_id": received["request_id"]},
    )
    assert foreign.status_code == 422 and foreign.json()["errors"][0]["field"] == "request_id"


async def test_a_restriction_lift_says_when_the_subject_was_told(api: httpx.AsyncClient) -> None:
    restricted = await api.post(
        "/v1/subjects/rq-r/restrictions", json={"ground": "accuracy_contested"}
    )
    assert restricted.status_code == 201
    untold = await api.post("/v1/subjects/rq-r/restrictions/lift", json={"evidence": "fixed"})
    assert untold.status_code == 422
    assert untold.json()["errors"][0]["field"] == "subject_informed_at"
    later = await api.post(
        "/v1/subjects/rq-r/restrictions/lift",
        json={"subject_informed_at": ago(-1), "occurred_at": ago(0)},
    )
    assert later.status_code == 422
    told = ago(2)
    lifted = await api.post(
        "/v1/subjects/rq-r/restrictions/lift", json={"subject_informed_at": told}
    )
    assert lifted.status_code == 201, lifted.text
    history = await api.get(
        "/v1/subjects/rq-r/events", params={"min_token": lifted.json()["token"]}
    )
    payload = history.json()["events"][-1]["payload"]
    assert payload["type"] == "RestrictionLifted"
    assert datetime.fromisoformat(payload["subject_informed_at"]) == datetime.fromisoformat(told)
