"""The batch check's limits and bad input against the app in-process: past 100,000 entries, a
bad entry, a bad `min_tokens` entry (each named by its pointer) and a body past 16 MiB, while
the other routes keep their 64 KiB. The largest batch answered is in
tests/integration/test_batch_decisions.py."""

from __future__ import annotations

from typing import Any

import httpx

from services.ledger.tokens import encode_token
from tests.unit.services.api.in_process import InProcess


async def check(api: httpx.AsyncClient, body: dict[str, Any], status: int) -> Any:
    response = await api.post("/v1/decisions/batch", json=body)
    assert response.status_code == status, response.text
    return response.json()


async def test_limits_and_bad_input(served: InProcess) -> None:
    api = served.api
    base = {"purpose": "newsletter", "channel": "email"}
    too_many = [f"s-{n}" for n in range(100_001)]
    problem = await check(api, {**base, "subjects": too_many}, 422)
    assert problem["errors"][0]["field"] == "subjects" and "100000" in problem["detail"]
    problem = await check(api, {**base, "emails": ["a@example.org"] * 100_001}, 422)
    assert problem["errors"][0]["pointer"] == "#/emails"
    bad = await check(api, {**base, "subjects": ["ok", "x@example.org", "a b"]}, 422)
    assert [e["pointer"] for e in bad["errors"]] == ["#/subjects/1", "#/subjects/2"]
    assert "x@example.org" not in str(bad)
    token = await check(api, {**base, "subjects": ["ok"], "min_tokens": ["nope"]}, 400)
    assert token["errors"][0]["pointer"] == "#/min_tokens/0"
    beyond = [encode_token(0, 0), encode_token(9999, 1)]  # a partition the topic lacks
    token = await check(api, {**base, "subjects": ["ok"], "min_tokens": beyond}, 400)
    assert token["errors"][0]["pointer"] == "#/min_tokens/1"
    huge = b'{"purpose": "newsletter", "channel": "email", "subjects": ["' + b"x" * (16 << 20)
    response = await api.post(
        "/v1/decisions/batch", content=huge, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    small = await api.post("/v1/subjects/s-1/consents", json={"reason": "x" * 70_000})
    assert small.status_code == 413  # the other routes keep their 64 KiB
