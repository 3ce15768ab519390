"""X-Request-Id against the app in-process: a caller's id is answered back and reaches the
access log line; one that could be personal data is replaced; every answer, a problem's body
included, carries the id."""

from __future__ import annotations

import logging
import re
import uuid

import pytest

from tests.unit.services.api.in_process import InProcess


async def test_request_ids_round_trip_and_reach_the_log(
    served: InProcess, caplog: pytest.LogCaptureFixture
) -> None:
    api = served.api
    caplog.set_level(logging.INFO, logger="consent_ledger.access")
    ours, refused = f"trace-{uuid.uuid4().hex}", f"trace-{uuid.uuid4().hex}"

    ok = await api.get("/v1/purposes", headers={"X-Request-Id": ours})
    assert ok.status_code == 200 and ok.headers["x-request-id"] == ours
    bad = await api.get(
        "/v1/decision", params={"purpose": "nope"}, headers={"X-Request-Id": refused}
    )
    assert bad.status_code == 422 and bad.headers["x-request-id"] == refused
    assert bad.json()["http_request_id"] == refused
    fresh = await api.get("/healthz")
    assert re.fullmatch(r"[0-9a-f]{32}", fresh.headers["x-request-id"])
    replaced = await api.get("/nope/ada@example.com", headers={"X-Request-Id": "ada@example.com"})
    assert replaced.status_code == 404
    assert re.fullmatch(r"[0-9a-f]{32}", replaced.headers["x-request-id"])
    assert replaced.json()["http_request_id"] == replaced.headers["x-request-id"]

    def access(request_id: str) -> list[dict[str, object]]:
        return [
            getattr(r, "fields", {})
            for r in caplog.records
            if r.name == "consent_ledger.access" and getattr(r, "request_id", None) == request_id
        ]

    [first] = access(ours)
    assert {k: first[k] for k in ("method", "route", "status")} == {
        "method": "GET",
        "route": "/v1/purposes",
        "status": 200,
    }
    [second] = access(refused)
    assert (second["route"], second["status"]) == ("/v1/decision", 422)
    [unmatched] = access(replaced.headers["x-request-id"])
    assert (unmatched["route"], unmatched["status"]) == ("unmatched", 404)
    # what the app logged (the test's own HTTP client logs its request lines too)
    logged = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("httpx"))
    assert "ada@example.com" not in logged and "nope" not in logged
