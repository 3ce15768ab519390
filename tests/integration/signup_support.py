"""Helpers shared by the sign-up and confirmation-link integration tests."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx

NL = {"purpose": "newsletter", "channel": "email"}
CONFIRM = {"confirm": "yes"}


async def sign_up(api: httpx.AsyncClient, subject: str, **body: Any) -> dict[str, Any]:
    response = await api.post(f"/v1/subjects/{subject}/signups", json={**NL, **body})
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def decide(api: httpx.AsyncClient, subject: str, token: str | None = None) -> Any:
    params = {"subject_id": subject, **NL, **({"min_token": token} if token else {})}
    answer = await api.get("/v1/decision", params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def events_of(api: httpx.AsyncClient, subject: str, token: str) -> list[dict[str, Any]]:
    answer = await api.get(f"/v1/subjects/{subject}/events", params={"min_token": token})
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()["events"]
    return found


async def opened_history(api: httpx.AsyncClient, subject: str) -> list[dict[str, Any]]:
    """The subject's history with contexts opened under its data key (GET .../history)."""
    answer = await api.get(f"/v1/subjects/{subject}/history")
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()["events"]
    return found


def page(url: str) -> str:
    return urlsplit(url).path
