"""Bad input: a 4xx problem+json naming the field, and nothing sent to the log."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.services.api.in_process import InProcess

GOOD = {"purpose": "newsletter", "channel": "email"}

# (id, path, headers, raw body, expected status, field named in the problem or None)
CASES: list[tuple[str, str, dict[str, str], bytes, int, str | None]] = [
    ("unknown-purpose", "consents", {}, b'{"purpose": "spam"}', 422, "purpose"),
    (
        "channel-not-for-purpose",
        "consents",
        {},
        b'{"purpose":"newsletter","channel":"sms"}',
        422,
        "channel",
    ),
    ("unknown-channel", "withdrawals", {}, b'{"channel": "pigeon"}', 422, "channel"),
    ("unknown-field", "consents", {}, b'{"purpose":"newsletter","colour":"red"}', 422, "colour"),
    (
        "unknown-nested-field",
        "consents",
        {},
        b'{"purpose":"newsletter","source":{"x":1}}',
        422,
        "source.x",
    ),
    ("wrong-type", "consents", {}, b'{"purpose": 42}', 422, "purpose"),
    (
        "wrong-type-flag",
        "consents",
        {},
        b'{"purpose":"newsletter","lift_objection":"yes"}',
        422,
        "lift_objection",
    ),
    ("missing-required", "consents", {}, b"{}", 422, "purpose"),
    (
        "bad-time",
        "consents",
        {},
        b'{"purpose":"newsletter","occurred_at":"yesterday"}',
        422,
        "occurred_at",
    ),
    (
        "naive-time",
        "consents",
        {},
        b'{"purpose":"newsletter","occurred_at":"2026-01-01T10:00:00"}',
        422,
        "occurred_at",
    ),
    (
        "time-past-the-calendar-in-utc",
        "consents",
        {},
        b'{"purpose":"newsletter","occurred_at":"0001-01-01T00:00:00+01:00"}',
        422,
        "occurred_at",
    ),
    (
        "time-before-1900",
        "consents",
        {},
        b'{"purpose":"newsletter","occurred_at":"1899-12-31T23:59:59Z"}',
        422,
        "occurred_at",
    ),
    (
        "expiry-after-9000",
        "consents",
        {},
        b'{"purpose":"newsletter","expires_at":"9999-12-31T23:59:59Z"}',
        422,
        "expires_at",
    ),
    (
        "nul-in-text",
        "withdrawals",
        {},
        b'{"reason":"moved\\u0000away"}',
        422,
        "reason",
    ),
    (
        "lone-surrogate-in-text",
        "withdrawals",
        {},
        b'{"source":{"system":"crm\\ud800"}}',
        422,
        "source.system",
    ),
    ("unknown-kind", "objections", {}, b'{"kind": "grumpy"}', 422, "kind"),
    ("processing-needs-purpose", "objections", {}, b'{"kind": "processing"}', 422, "purpose"),
    ("unknown-ground", "restrictions", {}, b'{"ground": "because"}', 422, "ground"),
    ("unknown-basis", "relationships", {}, b'{"basis": "friendship"}', 422, "basis"),
    (
        "unknown-outcome",
        "objections/resolve",
        {},
        b'{"purpose":"research","outcome":"maybe"}',
        422,
        "outcome",
    ),
    (
        "email-in-evidence",
        "objections/lift",
        {},
        b'{"kind":"direct_marketing","evidence":"a@b.fi"}',
        422,
        "evidence",
    ),
    ("malformed-json", "consents", {}, b'{"purpose": ', 400, None),
    ("not-an-object", "consents", {}, b"[1, 2]", 400, "(body)"),
    ("wrong-content-type", "consents", {"content-type": "text/plain"}, b"{}", 415, None),
    (
        "too-large",
        "consents",
        {},
        b'{"purpose":"newsletter","x":"' + b"a" * 70000 + b'"}',
        413,
        None,
    ),
    (
        "bad-idempotency-key",
        "consents",
        {"idempotency-key": "a b"},
        b'{"purpose":"newsletter"}',
        400,
        "Idempotency-Key",
    ),
]


@pytest.mark.parametrize(
    ("path", "headers", "body", "status", "field"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
async def test_bad_command_is_a_problem_and_writes_nothing(
    served: InProcess,
    path: str,
    headers: dict[str, str],
    body: bytes,
    status: int,
    field: str | None,
) -> None:
    sent = {"content-type": "application/json", **headers}
    response = await served.api.post(f"/v1/subjects/cust-9/{path}", content=body, headers=sent)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == status and problem["title"] and problem["detail"]
    if field is not None:
        assert field in [e["field"] for e in problem["errors"]], problem
    assert served.fake.publisher.sent == []


@pytest.mark.parametrize(
    ("subject", "expected"),
    [("someone@example.com", "e-mail"), ("x" * 129, "1-128"), ("sp ace", "1-128")],
    ids=["email", "too-long", "space"],
)
async def test_a_subject_id_that_is_not_pseudonymous_is_refused(
    served: InProcess, subject: str, expected: str
) -> None:
    response = await served.api.post(f"/v1/subjects/{subject}/consents", json=GOOD)
    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert error["field"] == "subject_id" and expected in error["detail"]
    query = {"subject_id": subject, "purpose": "newsletter", "channel": "email"}
    decision = await served.api.get("/v1/decision", params=query)
    assert decision.status_code == 422 and "subject_id" in decision.text


QUERY_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("missing-channel", {"subject_id": "s-1", "purpose": "newsletter"}, "channel"),
    ("unknown-purpose", {"subject_id": "s-1", "purpose": "spam", "channel": "email"}, "purpose"),
    (
        "channel-not-used",
        {"subject_id": "s-1", "purpose": "newsletter", "channel": "sms"},
        "channel",
    ),
    (
        "unknown-param",
        {"subject_id": "s-1", "purpose": "newsletter", "channel": "email", "x": "1"},
        "x",
    ),
]


@pytest.mark.parametrize(
    ("params", "field"), [c[1:] for c in QUERY_CASES], ids=[c[0] for c in QUERY_CASES]
)
async def test_bad_decision_query_names_the_field(
    served: InProcess, params: dict[str, Any], field: str
) -> None:
    response = await served.api.get("/v1/decision", params=params)
    assert response.status_code == 422
    assert field in [e["field"] for e in response.json()["errors"]]


async def test_a_min_token_that_is_no_token_is_a_400(served: InProcess) -> None:
    params = {"subject_id": "cust-5", "purpose": "newsletter", "channel": "email"}
    bad = await served.api.get("/v1/decision", params={**params, "min_token": "nonsense"})
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "min_token"


async def test_unknown_route_and_method_are_problems(served: InProcess) -> None:
    missing = await served.api.get("/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    wrong = await served.api.delete("/v1/purposes")
    assert wrong.status_code == 405
