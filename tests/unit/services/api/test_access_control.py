"""API keys against the app in-process: 401 without or with a bad key, 403 without the scope,
the right scope passes, public routes need none, and the public pages' rate limit answers 429.
What needs PostgreSQL (revocation, the answers of routes that read it) is in
tests/integration/test_access_control.py."""

from __future__ import annotations

from typing import Any

import pytest

from services.identity.api_keys import ADMIN, AUDIT, DECIDE, NOTICES, RECORD, REQUESTS
from tests.unit.services.api.in_process import InProcess, problem_of, serving


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer cl_nosuchkey_" + "A" * 43,
        "Bearer " + "x" * 40,
        "Basic dXNlcjpwYXNz",
        "Bearer",
    ],
)
async def test_a_missing_or_bad_key_is_401_and_writes_nothing(
    served: InProcess, header: str | None
) -> None:
    headers = {"Authorization": header} if header else {}
    async with served.client() as anonymous:
        write = await anonymous.post(
            "/v1/subjects/ac-1/consents", json={"purpose": "newsletter"}, headers=headers
        )
        read = await anonymous.get(
            "/v1/decision",
            params={"subject_id": "ac-1", "purpose": "newsletter", "channel": "email"},
            headers=headers,
        )
    for response in (write, read):
        problem_of(response, 401, "unauthorized")
        assert response.headers["www-authenticate"].startswith("Bearer ")
        secret = (header or "")[-40:]
        assert len(secret) < 20 or secret not in response.text  # never echoed
    assert served.fake.publisher.sent == []  # the refused command sent nothing


SUBJECT = "ac-matrix"
DECISION = {"subject_id": SUBJECT, "purpose": "newsletter", "channel": "email"}
AS_OF = {**DECISION, "at": "2026-01-01T00:00:00Z"}
#: (scope of the key, method, path, query, body, expected status); the rows whose answer
#: reads PostgreSQL are in tests/integration/test_access_control.py
MATRIX: list[tuple[str, str, str, dict[str, str], dict[str, Any] | None, int]] = [
    (DECIDE, "GET", "/v1/decision", DECISION, None, 200),
    (DECIDE, "GET", "/v1/decision", AS_OF, None, 403),
    (DECIDE, "GET", "/v1/purposes", {}, None, 200),
    (DECIDE, "POST", f"/v1/subjects/{SUBJECT}/consents", {}, {"purpose": "newsletter"}, 403),
    (DECIDE, "GET", f"/v1/subjects/{SUBJECT}/events", {}, None, 403),
    (DECIDE, "GET", "/metrics", {}, None, 403),
    (RECORD, "POST", f"/v1/subjects/{SUBJECT}/consents", {}, {"purpose": "newsletter"}, 201),
    (RECORD, "GET", "/v1/decision", DECISION, None, 403),
    (RECORD, "GET", f"/v1/subjects/{SUBJECT}/consent", {}, None, 403),
    (RECORD, "GET", "/v1/requests", {}, None, 403),
    (AUDIT, "GET", "/v1/decision", DECISION, None, 403),
    (AUDIT, "POST", f"/v1/subjects/{SUBJECT}/erasure", {}, {}, 403),
    # admin implies every scope; an empty erasure body is a 422, so it passed the check
    (ADMIN, "POST", f"/v1/subjects/{SUBJECT}/erasure", {}, {}, 422),
    (ADMIN, "GET", "/v1/decision", DECISION, None, 200),
]

#: the scope a refused route of MATRIX needs, by its last path segment
NEEDED = {
    "decision": DECIDE,
    "consents": RECORD,
    "events": AUDIT,
    "consent": AUDIT,
    "requests": AUDIT,
    "erasure": ADMIN,
    "metrics": ADMIN,
}


async def test_each_scope_opens_its_routes_only(served: InProcess) -> None:
    keys = {scope: served.key(scope, name=scope) for scope in (DECIDE, RECORD, AUDIT, ADMIN)}
    for scope, method, path, query, body, status in MATRIX:
        async with served.client(keys[scope]) as client:
            response = await client.request(method, path, params=query, json=body)
        where = f"{scope} key: {method} {path} {query}"
        assert response.status_code == status, f"{where}: {response.text}"
        if status == 403:
            needed = AUDIT if "at" in query else NEEDED[path.split("/")[-1]]
            detail = problem_of(response, 403, "forbidden")["detail"]
            assert f"the {needed} scope" in detail, where
            challenge = response.headers["www-authenticate"]
            assert f'error="insufficient_scope", scope="{needed}"' in challenge, where


def assert_forbidden(response: Any, scope: str) -> None:
    assert response.status_code == 403, response.text
    assert f"the {scope} scope (or admin)" in problem_of(response, 403, "forbidden")["detail"]
    assert f'scope="{scope}"' in response.headers["www-authenticate"]


async def test_a_notice_is_published_with_the_notices_scope_only(served: InProcess) -> None:
    """A `record` key (forms, the CRM) cannot publish a privacy notice, which can outdate
    every consent; the notices scope is that and nothing more."""
    notice = {"version": "form-1", "material": True}
    async with served.client(served.key(RECORD, name="form")) as form:
        assert_forbidden(await form.post("/v1/notices", json=notice), NOTICES)
    async with served.client(served.key(NOTICES, name="legal")) as legal:
        grant = await legal.post("/v1/subjects/sc-1/consents", json={"purpose": "newsletter"})
        assert_forbidden(grant, RECORD)


@pytest.mark.parametrize("step", ["complete", "refuse", "verify", "extend"])
async def test_a_request_is_received_with_record_and_handled_with_requests(
    served: InProcess, step: str
) -> None:
    item = f"/v1/requests/00000000-0000-4000-8000-000000000000/{step}"
    async with served.client(served.key(RECORD, name="crm")) as crm:
        assert_forbidden(await crm.post(item, json={}), REQUESTS)
    async with served.client(served.key(REQUESTS, name="dpo")) as dpo:
        received = await dpo.post("/v1/requests", json={"subject_id": "sc-3", "kind": "access"})
        assert_forbidden(received, RECORD)


async def test_public_routes_need_no_key(served: InProcess) -> None:
    async with served.client() as anonymous:
        for path in ("/healthz", "/openapi.json", "/.well-known/jwks.json"):
            response = await anonymous.get(path)
            assert response.status_code == 200, f"{path}: {response.text}"
        for path in ("/u/not-a-token", "/p/not-a-token"):
            refused = await anonymous.get(path)
            assert refused.status_code == 404 and "text/html" in refused.headers["content-type"]
        problem_of(await anonymous.get("/v1/purposes"), 401, "unauthorized")
        problem_of(await anonymous.get("/metrics"), 401, "unauthorized")


async def test_readyz_needs_no_key_but_refuses_a_bad_one(served: InProcess) -> None:
    """A key sent to /readyz is checked (a valid one sees the details:
    tests/integration/test_readiness.py)."""
    async with served.client("cl_x_nope") as bad:
        problem_of(await bad.get("/readyz"), 401, "unauthorized")


async def test_the_public_pages_are_rate_limited_per_client_address() -> None:
    async with serving(LEDGER_PUBLIC_RATE_PER_MIN="3") as served:
        async with served.client(address="203.0.113.7") as anonymous:
            answers = [(await anonymous.get("/u/no-token")).status_code for _ in "abc"]
            assert answers == [404, 404, 404]
            limited = await anonymous.post("/p/no-token")
            assert limited.status_code == 429  # the pages' own HTML page
            assert limited.headers["content-type"].startswith("text/html")
            assert 1 <= int(limited.headers["retry-after"]) <= 20  # 3 a minute: one each 20 s
        async with served.client(address="203.0.113.8") as other:
            assert (await other.get("/u/no-token")).status_code == 404
        # the API routes are not rate limited
        purposes = [(await served.api.get("/v1/purposes")).status_code for _ in range(5)]
        assert purposes == [200] * 5
