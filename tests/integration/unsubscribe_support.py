"""Helpers shared by the unsubscribe-link and preference-page integration tests."""

from __future__ import annotations

import re
import uuid
from typing import Any
from urllib.parse import urlsplit

import httpx

ONE_CLICK = {"List-Unsubscribe": "One-Click"}
FORM = "application/x-www-form-urlencoded"
COUNT_RE = re.compile(r"^ledger_unsubscribe_to_projection_seconds_count (\d+)$", re.MULTILINE)
SHOWN_RE = re.compile(r'name="shown" value="([0-9a-f]{64})"')


def new_subject() -> str:
    return "s-" + uuid.uuid4().hex[:12]


async def grant(api: httpx.AsyncClient, subject: str, purpose: str, channel: str) -> str:
    body = {"purpose": purpose, "channel": channel, "method": "form"}
    response = await api.post(f"/v1/subjects/{subject}/consents", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["token"])


async def issue(api: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await api.post("/v1/unsubscribe-links", json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def path_of(url: str) -> str:
    return urlsplit(url).path


def shown(page: httpx.Response) -> str:
    """The digest of the choices a preference page shows, which its form sends back."""
    found = SHOWN_RE.search(page.text)
    assert found, page.text
    return found.group(1)


async def decision(
    api: httpx.AsyncClient, subject: str, purpose: str, channel: str, token: str
) -> dict[str, Any]:
    params = {"subject_id": subject, "purpose": purpose, "channel": channel, "min_token": token}
    response = await api.get("/v1/decision", params=params)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def history(api: httpx.AsyncClient, subject: str, token: str) -> list[dict[str, Any]]:
    response = await api.get(f"/v1/subjects/{subject}/events", params={"min_token": token})
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["events"]
    return events


async def metric_count(api: httpx.AsyncClient) -> int:
    response = await api.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    found = COUNT_RE.search(response.text)
    assert found, response.text
    return int(found.group(1))
