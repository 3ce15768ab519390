"""The API's metrics over real servers: per-route latency under the route template, decisions
by reason, commands by event type. X-Request-Id in answers and log lines is checked in-process:
tests/unit/services/api/test_request_id_round_trip.py."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest

pytestmark = pytest.mark.integration

Sample = tuple[str, frozenset[tuple[str, str]]]
_LINE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})? (?P<value>\S+)$")
_PAIR = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def samples(text: str) -> dict[Sample, float]:
    """Every sample of a Prometheus text page, by name and label set."""
    out: dict[Sample, float] = {}
    for line in text.split("\n"):
        if not line or line.startswith("#"):
            continue
        found = _LINE.match(line)
        assert found, f"not a sample line: {line!r}"
        labels = frozenset(_PAIR.findall(found["labels"] or ""))
        out[(found["name"], labels)] = float(found["value"])
    return out


async def scrape(api: httpx.AsyncClient) -> dict[Sample, float]:
    response = await api.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return samples(response.text)


def key(name: str, **labels: str) -> Sample:
    return name, frozenset(labels.items())


def added(before: dict[Sample, float], after: dict[Sample, float], sample: Sample) -> float:
    return after.get(sample, 0) - before.get(sample, 0)


def decisions(endpoint: str, reason: str, allowed: str) -> Sample:
    return key("ledger_decisions_total", endpoint=endpoint, reason=reason, allowed=allowed)


def requests(route: str, method: str = "GET", status_class: str = "2xx") -> Sample:
    return key(
        "ledger_http_request_duration_seconds_count",
        method=method,
        route=route,
        status_class=status_class,
    )


async def test_metrics_count_routes_decisions_and_commands(api: httpx.AsyncClient) -> None:
    subject = "obs-" + uuid.uuid4().hex[:10]
    others = [f"{subject}-b", f"{subject}-c"]
    before = await scrape(api)

    body = {"purpose": "newsletter", "channel": "email"}
    idempotent = {"Idempotency-Key": f"obs-{subject}"}
    granted = await api.post(f"/v1/subjects/{subject}/consents", json=body, headers=idempotent)
    assert granted.status_code == 201, granted.text
    again = await api.post(f"/v1/subjects/{subject}/consents", json=body, headers=idempotent)
    assert again.headers["idempotent-replayed"] == "true"
    token = granted.json()["token"]
    params = {"subject_id": subject, **body, "min_token": token}
    allowed = (await api.get("/v1/decision", params=params)).json()
    assert (allowed["allowed"], allowed["reason"]) == (True, "consent_given")
    unknown = await api.get("/v1/decision", params={"email": f"{subject}@example.org", **body})
    assert unknown.json()["reason"] == "unknown_subject"
    state = await api.get(f"/v1/subjects/{subject}/consent")
    assert state.status_code == 200
    batch = await api.post(
        "/v1/decisions/batch",
        json={**body, "subjects": [subject, *others, subject], "min_tokens": [token]},
    )
    assert batch.json()["counts"] == {
        "requested": 3,
        "allowed": 1,
        "denied": 2,
        "denied_by_reason": {"no_consent": 2},
    }

    after = await scrape(api)
    commands = "ledger_commands_total"
    granted_labels = {"type": "ConsentGranted", "source_method": "api"}
    assert added(before, after, key(commands, **granted_labels, outcome="acknowledged")) == 1
    assert added(before, after, key(commands, **granted_labels, outcome="replayed")) == 1
    assert added(before, after, decisions("decision", "consent_given", "true")) == 1
    assert added(before, after, decisions("decision", "unknown_subject", "false")) == 1
    assert added(before, after, decisions("batch", "consent_given", "true")) == 1
    assert added(before, after, decisions("batch", "no_consent", "false")) == 2
    assert added(before, after, requests("/v1/decision")) == 2
    assert added(before, after, requests("/v1/subjects/{subject_id}/consent")) == 1
    assert added(before, after, requests("/v1/subjects/{subject_id}/consents", "POST")) == 2
    assert added(before, after, requests("/v1/decisions/batch", "POST")) == 1

    route = "/v1/subjects/{subject_id}/consent"
    labels = {"method": "GET", "route": route, "status_class": "2xx"}
    count = after[key("ledger_http_request_duration_seconds_count", **labels)]
    inf = key("ledger_http_request_duration_seconds_bucket", **labels, le="+Inf")
    assert after[inf] == count and after[key("ledger_http_request_duration_seconds_sum", **labels)]
    assert not any(subject in value for _, pairs in after for _, value in pairs)
