"""GET /v1/suppressions against the real servers: who is listed, paging, channel rules (a bad
query is checked in-process: tests/unit/services/api/test_suppression_input.py)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from services.config import Settings
from services.identity.identities import blind_index, normalise

pytestmark = pytest.mark.integration


class Ledger:
    """Commands for a few subjects, remembering each subject's latest token."""

    def __init__(self, api: httpx.AsyncClient) -> None:
        self.api = api
        self.tokens: dict[str, str] = {}

    async def post(self, subject: str, path: str, body: dict[str, Any]) -> Any:
        response = await self.api.post(f"/v1/subjects/{subject}/{path}", json=body)
        assert response.status_code == 201, response.text
        self.tokens[subject] = response.json()["token"]
        return response.json()

    async def unlink(self, subject: str, body: dict[str, Any]) -> None:
        response = await self.api.request(
            "DELETE", f"/v1/subjects/{subject}/identifiers", json=body
        )
        assert response.status_code == 201, response.text
        self.tokens[subject] = response.json()["token"]

    async def settled(self) -> None:
        """Wait (bounded, by min_token) until every command so far is projected."""
        for subject, token in self.tokens.items():
            response = await self.api.get(
                f"/v1/subjects/{subject}/consent", params={"min_token": token}
            )
            assert response.status_code == 200, response.text


def index(settings: Settings, kind: str, value: str) -> str:
    key = settings.secrets().blind_index_key
    return blind_index(key, kind, normalise(kind, value)).hex()


async def everything(api: httpx.AsyncClient, channel: str, limit: int) -> list[list[Any]]:
    """Every page of the channel's list, following `next`."""
    pages: list[list[Any]] = []
    url: str | None = f"/v1/suppressions?channel={channel}&limit={limit}"
    while url is not None:
        response = await api.get(url)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["channel"] == channel
        pages.append(body["suppressions"])
        url = body["next"]
        assert len(pages) < 50
    return pages


def email(n: int) -> dict[str, str]:
    return {"type": "email", "value": f"SP-{n}@Example.com"}


async def test_the_email_list_pages_and_follows_objections_withdrawals_and_links(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    ledger = Ledger(api)
    objections = {}
    for n in range(12):
        await ledger.post(f"sp-{n}", "identifiers", email(n))
    for n in range(6):
        objections[n] = await ledger.post(f"sp-{n}", "objections", {"kind": "direct_marketing"})
    withdrawal = await ledger.post("sp-6", "withdrawals", {})
    await ledger.post("sp-7", "withdrawals", {})
    await ledger.post("sp-7", "consents", {"purpose": "newsletter", "channel": "email"})
    await ledger.post("sp-8", "objections", {"kind": "direct_marketing"})
    lift = {"kind": "direct_marketing", "evidence": "ticket 1"}
    await ledger.post("sp-8", "objections/lift", lift)
    await ledger.post("sp-9", "objections", {"kind": "direct_marketing", "channel": "sms"})
    await ledger.post("sp-11", "objections", {"kind": "direct_marketing"})
    await ledger.settled()  # an unlink checks the projected link
    await ledger.unlink("sp-11", email(11))
    await ledger.settled()

    pages = await everything(api, "email", 3)
    assert [len(p) for p in pages] == [3, 3, 1]
    listed = [entry for page in pages for entry in page]
    expected = {index(settings, "email", f"sp-{n}@example.com"): n for n in range(7)}
    assert [e["blind_index"] for e in listed] == sorted(expected)
    for entry in listed:
        n = expected[entry["blind_index"]]
        assert entry["identifier_type"] == "email"
        if n < 6:
            assert entry["reason"] == "objected_direct_marketing"
            assert entry["event_id"] == objections[n]["event_id"]
            assert entry["since"] == objections[n]["recorded_at"]
        else:
            assert entry["reason"] == "withdrawn_all"
            assert entry["event_id"] == withdrawal["event_id"]
    assert await everything(api, "email", 1000) == [listed]
    # pages of one: candidates the rule turns down (sp-7) fall inside the fetched chunks
    assert await everything(api, "email", 1) == [[entry] for entry in listed]

    await ledger.post("sp-1", "objections/lift", lift)
    await ledger.settled()
    after_lift = [e["blind_index"] for page in await everything(api, "email", 1000) for e in page]
    gone = index(settings, "email", "sp-1@example.com")
    assert after_lift == [i for i in sorted(expected) if i != gone]


async def test_sms_and_phone_list_phone_numbers(api: httpx.AsyncClient, settings: Settings) -> None:
    ledger = Ledger(api)
    numbers = {"ph-1": "+49 151 1234 5671", "ph-2": "0049 151 1234 5672", "ph-3": "+4915112345673"}
    for subject, number in numbers.items():
        await ledger.post(subject, "identifiers", {"type": "phone", "value": number})
        await ledger.post(subject, "identifiers", {"type": "email", "value": f"{subject}@x.org"})
    await ledger.post("ph-1", "objections", {"kind": "direct_marketing"})
    await ledger.post("ph-2", "objections", {"kind": "direct_marketing", "channel": "sms"})
    await ledger.post("ph-3", "withdrawals", {"channel": "phone"})
    await ledger.settled()

    def listed(pages: list[list[Any]]) -> dict[str, str]:
        return {e["blind_index"]: e["reason"] for page in pages for e in page}

    def phone(subject: str) -> str:
        return index(settings, "phone", numbers[subject])

    assert listed(await everything(api, "sms", 10)) == {
        phone("ph-1"): "objected_direct_marketing",
        phone("ph-2"): "objected_direct_marketing",
    }
    assert listed(await everything(api, "phone", 10)) == {
        phone("ph-1"): "objected_direct_marketing",
        phone("ph-3"): "withdrawn_all",
    }
    assert listed(await everything(api, "email", 10)) == {
        index(settings, "email", "ph-1@x.org"): "objected_direct_marketing"
    }
