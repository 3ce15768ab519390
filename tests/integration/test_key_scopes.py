"""The `notices` and `requests` scopes against a real API (security review M4): a key with the
scope publishes a privacy notice or takes a rights request's steps. That a `record` key (forms,
the CRM) cannot, nor these keys anything else, is checked in-process:
tests/unit/services/api/test_access_control.py."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from services.config import Settings
from services.identity.api_keys import NOTICES, RECORD, REQUESTS
from tests.integration.access_support import client_of, made_key

pytestmark = pytest.mark.integration


def notice(version: str) -> dict[str, Any]:
    return {
        "version": version,
        "effective_from": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "text_sha256": hashlib.sha256(version.encode()).hexdigest(),
        "url": f"https://example.com/privacy/{version}",
        "material": True,
    }


async def test_publishing_a_notice_needs_the_notices_scope(
    module_api: httpx.AsyncClient, module_settings: Settings
) -> None:
    _, notices = await made_key(module_settings, module_api, NOTICES, name="legal")
    async with client_of(module_api, notices) as legal:
        published = await legal.post("/v1/notices", json=notice("legal-1"))
        assert published.status_code == 201, published.text
        assert (await legal.get("/v1/notices")).status_code == 200  # any key reads them


@pytest.mark.parametrize(
    ("step", "body"),
    [
        ("complete", {"evidence": "sent the export"}),
        ("refuse", {"reason": "manifestly unfounded"}),
        ("verify", {"evidence": "answered from the account's address"}),
        ("extend", {"reason": "many requests at once", "months": 1}),
    ],
)
async def test_a_request_is_received_with_record_and_handled_with_requests(
    module_api: httpx.AsyncClient, module_settings: Settings, step: str, body: dict[str, Any]
) -> None:
    _, record = await made_key(module_settings, module_api, RECORD, name="crm")
    _, handler = await made_key(module_settings, module_api, REQUESTS, name="dpo")
    async with client_of(module_api, record) as crm:
        received = await crm.post("/v1/requests", json={"subject_id": "sc-2", "kind": "access"})
        assert received.status_code == 201, received.text
        item = f"/v1/requests/{received.json()['request_id']}/{step}"
        wait = {"min_token": received.json()["token"]}
    async with client_of(module_api, handler) as dpo:
        taken = await dpo.post(item, params=wait, json=body)
        assert taken.status_code == 201, taken.text
