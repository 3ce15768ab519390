"""The `notices` and `requests` scopes against a real API (security review M4): a `record`
key (forms, the CRM) can no longer publish a privacy notice, which can outdate every consent,
nor take a rights request's steps; a key with the new scope (or admin) can."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from services.config import Settings
from services.identity.api_keys import NOTICES, RECORD, REQUESTS
from tests.integration.access_support import PROBLEM, client_of, made_key

pytestmark = pytest.mark.integration


def notice(version: str) -> dict[str, Any]:
    return {
        "version": version,
        "effective_from": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "text_sha256": hashlib.sha256(version.encode()).hexdigest(),
        "url": f"https://example.com/privacy/{version}",
        "material": True,
    }


def assert_forbidden(response: httpx.Response, scope: str) -> None:
    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == PROBLEM
    assert f"the {scope} scope (or admin)" in response.json()["detail"]
    assert f'scope="{scope}"' in response.headers["www-authenticate"]


async def test_publishing_a_notice_needs_the_notices_scope(
    module_api: httpx.AsyncClient, module_settings: Settings
) -> None:
    _, record = await made_key(module_settings, module_api, RECORD, name="form")
    _, notices = await made_key(module_settings, module_api, NOTICES, name="legal")
    async with client_of(module_api, record) as form:
        assert_forbidden(await form.post("/v1/notices", json=notice("form-1")), NOTICES)
    async with client_of(module_api, notices) as legal:
        published = await legal.post("/v1/notices", json=notice("legal-1"))
        assert published.status_code == 201, published.text
        assert (await legal.get("/v1/notices")).status_code == 200  # any key reads them
        # the notices scope is that and nothing more
        grant = await legal.post("/v1/subjects/sc-1/consents", json={"purpose": "newsletter"})
        assert_forbidden(grant, RECORD)


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
        assert_forbidden(await crm.post(item, params=wait, json=body), REQUESTS)
    async with client_of(module_api, handler) as dpo:
        taken = await dpo.post(item, params=wait, json=body)
        assert taken.status_code == 201, taken.text
        assert_forbidden(
            await dpo.post("/v1/requests", json={"subject_id": "sc-3", "kind": "access"}), RECORD
        )
