"""Helpers shared by the as-of decision and history/export integration tests."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx

from schemas.events import rfc3339
from services.ledger.tokens import decode_token

MICRO = timedelta(microseconds=1)
COMMON = ("event_id", "subject_id", "occurred_at", "recorded_at", "source", "actor")


async def post(api: httpx.AsyncClient, subject: str, path: str, body: dict[str, Any]) -> Any:
    response = await api.post(f"/v1/subjects/{subject}/{path}", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def projected(api: httpx.AsyncClient, created: dict[str, Any]) -> None:
    """Wait until the projection has applied the write (an unlink checks the projected link)."""
    subject, token = created["subject_id"], created["token"]
    response = await api.get(f"/v1/subjects/{subject}/events", params={"min_token": token})
    assert response.status_code == 200, response.text


def recorded(created: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(created["recorded_at"])


def position(created: dict[str, Any]) -> dict[str, int]:
    partition, next_offset = decode_token(created["token"])
    return {"partition": partition, "offset": next_offset - 1}


async def decision_at(
    api: httpx.AsyncClient, at: datetime, token: str, **who: str
) -> dict[str, Any]:
    params = {"purpose": "newsletter", "channel": "email", "at": rfc3339(at), **who}
    response = await api.get("/v1/decision", params={**params, "min_token": token})
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer
