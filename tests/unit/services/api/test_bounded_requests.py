"""Bounded cost for any input, against the app in-process: oversized request targets and
headers are refused before the key check, long subject ids and repeated parameters get a 4xx at
once, a JSON body nested 32,000 deep is a 400, and the API keeps answering meanwhile. The
concurrency limit and the pool's time limits are in tests/integration/test_bounded_requests.py."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from services.http.json_body import LARGE_AT_ONCE, ON_LOOP_MAX
from tests.unit.services.api.in_process import PROBLEM, InProcess

DECISION = "/v1/decision?purpose=newsletter&channel=email"
GRANT = {"purpose": "newsletter", "channel": "email"}


def problem(answer: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text[:300]
    assert answer.headers["content-type"] == PROBLEM
    body: dict[str, Any] = answer.json()
    assert body["type"] == f"urn:consent-ledger:problem:{kind}"
    assert body["http_request_id"] == answer.headers["x-request-id"]
    return body


def field_problem(answer: httpx.Response, field: str, detail: str) -> None:
    body = problem(answer, 422, "invalid-request")
    assert [(e["field"], e["detail"][: len(detail)]) for e in body["errors"]] == [(field, detail)]


def subject_query(length: int) -> str:
    return f"{DECISION}&subject_id={'a' * length}"


def consents_path(length: int) -> str:
    return f"/v1/subjects/{'a' * length}/consents"


def batch_body(ids: int, length: int) -> bytes:
    return json.dumps({**GRANT, "subjects": ["a" * length] * ids}).encode()


async def test_a_long_subject_id_in_a_query(served: InProcess) -> None:
    body = problem(await served.api.get(subject_query(60_000)), 414, "uri-too-long")
    assert body["detail"].startswith("the query string is 60")
    assert [e["field"] for e in body["errors"]] == ["subject_id"]
    answer = await served.api.get(subject_query(8000))
    field_problem(answer, "subject_id", "is 8000 characters long; must be 1-128")


async def test_a_long_subject_id_in_a_path(served: InProcess) -> None:
    body = problem(await served.api.post(consents_path(60_000), json=GRANT), 414, "uri-too-long")
    assert body["detail"].startswith("the path is 60")
    answer = await served.api.post(consents_path(8000), json=GRANT)
    field_problem(answer, "subject_id", "is 8000 characters long; must be 1-128")


async def test_long_subject_ids_in_a_batch(served: InProcess) -> None:
    headers = {"content-type": "application/json"}
    answer = await served.api.post(
        "/v1/decisions/batch", content=batch_body(1, 60_000), headers=headers
    )
    field_problem(answer, "subjects.0", "is 60000 characters long; must be 1-128")
    # as many as fit in the 16 MiB body: each refused for its length alone
    answer = await served.api.post(
        "/v1/decisions/batch", content=batch_body(270, 60_000), headers=headers
    )
    body = problem(answer, 422, "invalid-request")
    assert len(body["errors"]) == 11
    assert body["errors"][-1]["detail"] == "270 entries are invalid; the first 10 are listed"


async def test_repeated_query_parameters(served: InProcess) -> None:
    problem(await served.api.get(DECISION + "&a=" * 10_000), 414, "uri-too-long")
    answer = await served.api.get(DECISION + "&a=" * 2000)
    field_problem(answer, "a", "is given more than once")


@pytest.mark.parametrize(
    ("path", "headers", "status", "kind"),
    [
        pytest.param(subject_query(9000), {}, 414, "uri-too-long", id="query"),
        pytest.param(f"/v1/subjects/{'a' * 9000}/consent", {}, 414, "uri-too-long", id="path"),
        pytest.param(DECISION, {"x-big": "b" * 17_000}, 431, "headers-too-large", id="one-header"),
        pytest.param(
            DECISION,
            {f"x-h{i}": "v" * 10 for i in range(1200)},
            431,
            "headers-too-large",
            id="many-headers",
        ),
    ],
)
async def test_oversized_requests_are_refused_before_the_key_check(
    served: InProcess, path: str, headers: dict[str, str], status: int, kind: str
) -> None:
    async with served.client() as anonymous:
        problem(await anonymous.get(path, headers=headers), status, kind)
        # the same client without the excess is asked for a key
        problem(await anonymous.get(DECISION), 401, "unauthorized")


async def test_a_json_body_nested_32000_deep_is_a_400(served: InProcess) -> None:
    headers = {"content-type": "application/json"}
    path = "/v1/subjects/crm:1/consents"
    for target, body in ((path, b"[" * 32_000), ("/v1/decisions/batch", b"[" * 70_000)):
        answer = await served.api.post(target, content=body, headers=headers)
        detail = problem(answer, 400, "malformed-json")["detail"]
        assert detail == "the body nests arrays and objects too deeply"
    answer = await served.api.post(path, content=b'{"n": ' + b"9" * 5000 + b"}", headers=headers)
    problem(answer, 400, "malformed-json")


async def test_the_api_answers_others_while_expensive_requests_are_in_flight(
    served: InProcess,
) -> None:
    """Every costly request of the tests above at once, with a health check before and after
    them: all are answered as they should be. (Before, each 60,000-character id held the event
    loop for about 10 s, long enough for the API's key copy to go stale: the requests behind
    them got 503.)"""
    json_headers = {"content-type": "application/json"}
    batch = batch_body(270, 60_000)
    costly = [
        *(served.api.get(subject_query(8000)) for _ in range(4)),
        *(served.api.post(consents_path(8000), json=GRANT) for _ in range(4)),
        *(served.api.get(subject_query(60_000)) for _ in range(2)),
        *(
            served.api.post("/v1/decisions/batch", content=batch, headers=json_headers)
            for _ in range(2)
        ),
        served.api.get(DECISION + "&a=" * 2000),
        served.api.post("/v1/subjects/crm:1/consents", content=b"[" * 32_000, headers=json_headers),
    ]
    health = served.api.get("/healthz")
    answers = await asyncio.gather(health, *costly, served.api.get("/healthz"))
    assert [a.status_code for a in answers] == (
        [200] + [422] * 8 + [414] * 2 + [422] * 3 + [400] + [200]
    )


async def test_past_two_large_bodies_at_once_a_third_batch_is_a_503_at_once(
    served: InProcess,
) -> None:
    """The process reads at most LARGE_AT_ONCE large bodies at a time
    (services/http/json_body.py): while two batch bodies are still arriving a third is turned
    away before its body is read, a small body is read as ever, and the two are answered once
    their bodies are in."""
    body = batch_body(1, 100_000)  # one id too long: a 422 once the body is read
    assert len(body) > ON_LOOP_MAX
    headers = {"content-type": "application/json", "content-length": str(len(body))}
    release = asyncio.Event()

    async def arriving(asked: asyncio.Event) -> AsyncIterator[bytes]:
        asked.set()  # the handler has its slot and waits for the body
        await release.wait()
        yield body

    asked = [asyncio.Event() for _ in range(LARGE_AT_ONCE)]
    held = [
        asyncio.create_task(
            served.api.post("/v1/decisions/batch", content=arriving(a), headers=headers)
        )
        for a in asked
    ]
    try:
        for started in asked:
            await started.wait()
        refused = await served.api.post("/v1/decisions/batch", content=body, headers=headers)
        assert problem(refused, 503, "unavailable")["detail"].endswith("retry in a second")
        assert refused.headers["retry-after"] == "1"
        small = await served.api.post(
            "/v1/decisions/batch",
            content=batch_body(1, 200),
            headers={"content-type": "application/json"},
        )
        field_problem(small, "subjects.0", "is 200 characters long; must be 1-128")
    finally:
        release.set()
    for answer in await asyncio.gather(*held):
        field_problem(answer, "subjects.0", "is 100000 characters long; must be 1-128")
