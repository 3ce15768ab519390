"""The context of events against the real broker and PostgreSQL: a page captures it (the
network, never the full address, anywhere), an API caller asserts it, history, export and
receipts show it, and erasure leaves its personal fields unreadable."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from services.config import Settings
from tests.integration.access_support import client_of
from tests.integration.erasure_support import topic_events
from tests.integration.unsubscribe_support import (
    FORM,
    ONE_CLICK,
    grant,
    issue,
    new_subject,
    path_of,
)

pytestmark = pytest.mark.integration

FULL_ADDRESS = "198.51.100.77"
NETWORK = "198.51.100.0/24"
EVERY_FIELD = ["client_address", "user_agent", "page", "page_version", "language", "one_click"]


async def _history(api: httpx.AsyncClient, subject: str, token: str) -> list[dict[str, Any]]:
    answer = await api.get(f"/v1/subjects/{subject}/history", params={"min_token": token})
    assert answer.status_code == 200, answer.text
    events: list[dict[str, Any]] = answer.json()["events"]
    return events


async def _stored_texts(settings: Settings) -> list[str]:
    """Every value of every table of the ledger's database, bytes read as Latin-1 and as hex."""
    conn = await asyncpg.connect(settings.database_url)
    try:
        tables = await conn.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        )
        out = []
        for table in tables:
            for row in await conn.fetch(f'SELECT * FROM "{table["table_name"]}"'):
                for value in row.values():
                    if isinstance(value, bytes):
                        out += [value.decode("latin-1"), value.hex()]
                    else:
                        out.append(str(value))
        return out
    finally:
        await conn.close()


async def test_a_page_captures_the_network_never_the_address(
    module_api: httpx.AsyncClient, module_settings: Settings
) -> None:
    subject = new_subject()
    agent = f"ContextCheck/{uuid.uuid4().hex} (X11; Linux x86_64)"
    await grant(module_api, subject, "newsletter", "email")
    answer = await issue(module_api, subject_id=subject, purpose="newsletter", channel="email")
    headers = {"X-Forwarded-For": FULL_ADDRESS, "User-Agent": agent, "Content-Type": FORM}
    async with client_of(module_api) as anonymous:
        posted = await anonymous.post(
            path_of(answer["url"]),
            content="List-Unsubscribe=One-Click&from=page",
            headers=headers,
        )
    assert posted.status_code == 200, posted.text
    events = await _history(module_api, subject, posted.headers["ledger-token"])
    withdrawal = events[-1]["payload"]
    assert withdrawal["type"] == "ConsentWithdrawn"
    context = withdrawal["context"]
    assert context["client_address"] == NETWORK
    assert context["user_agent"] == agent
    assert context["page"] == "unsubscribe" and context["language"] == "en"
    assert len(context["page_version"]) == 12 and context["one_click"] is False
    assert context["captured"] == EVERY_FIELD and context["asserted"] == []
    assert context["unreadable"] == []
    assert "context" not in events[0]["payload"]  # the grant came without one

    texts = await _stored_texts(module_settings)
    assert not [t for t in texts if FULL_ADDRESS in t or FULL_ADDRESS.encode().hex() in t]
    assert not [t for t in texts if agent in t or NETWORK in t]  # only ciphertext is stored
    values = [value for _, value in await topic_events(module_settings) if value]
    assert not [v for v in values if FULL_ADDRESS.encode() in v or agent.encode() in v]
    assert not [v for v in values if NETWORK.encode() in v]


async def test_a_bare_one_click_post_says_so_and_names_no_page_version(
    module_api: httpx.AsyncClient,
) -> None:
    subject = new_subject()
    await grant(module_api, subject, "newsletter", "email")
    answer = await issue(module_api, subject_id=subject, purpose="newsletter", channel="email")
    async with client_of(module_api) as provider:
        posted = await provider.post(
            path_of(answer["url"]),
            data=ONE_CLICK,
            headers={"X-Forwarded-For": "2001:db8:77:1::25", "User-Agent": ""},
        )
    assert posted.status_code == 200, posted.text
    context = (await _history(module_api, subject, posted.headers["ledger-token"]))[-1]["payload"][
        "context"
    ]
    assert context["one_click"] is True and context["page_version"] is None
    assert context["client_address"] == "2001:db8:77::/48" and context["user_agent"] is None
    assert context["captured"] == ["client_address", "page", "language", "one_click"]


async def test_an_api_context_is_asserted_shown_everywhere_and_erased(
    module_api: httpx.AsyncClient,
) -> None:
    subject = new_subject()
    sent = {
        "client_address": "203.0.113.0/24",
        "user_agent": "Mozilla/5.0 (sign-up form)",
        "page": "signup",
        "page_version": "2026-02",
        "language": "fi",
    }
    refused = await module_api.post(
        f"/v1/subjects/{subject}/consents",
        json={"purpose": "newsletter", "context": {"client_address": "203.0.113.9"}},
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["field"] == "context.client_address"
    assert "full client address" in refused.json()["errors"][0]["detail"]
    too_long = await module_api.post(
        f"/v1/subjects/{subject}/consents",
        json={"purpose": "newsletter", "context": {"user_agent": "a" * 257}},
    )
    assert too_long.status_code == 422
    assert too_long.json()["errors"][0]["field"] == "context.user_agent"

    granted = await module_api.post(
        f"/v1/subjects/{subject}/consents",
        json={"purpose": "newsletter", "channel": "email", "context": sent},
    )
    assert granted.status_code == 201, granted.text
    event_id, token = granted.json()["event_id"], granted.json()["token"]
    shown = {
        **sent,
        "one_click": False,
        "captured": [],
        "asserted": ["client_address", "user_agent", "page", "page_version", "language"],
        "unreadable": [],
    }
    (entry,) = await _history(module_api, subject, token)
    assert entry["payload"]["context"] == shown
    csv_history = await module_api.get(
        f"/v1/subjects/{subject}/history", params={"format": "csv", "min_token": token}
    )
    assert "203.0.113.0/24" in csv_history.text
    export = await module_api.get(f"/v1/subjects/{subject}/export")
    assert export.json()["history"][0]["payload"]["context"] == shown
    iso = await module_api.get(f"/v1/receipts/{event_id}", params={"format": "iso27560"})
    assert iso.status_code == 200, iso.text
    assert iso.json()["receipt"]["collection_method"]["context"] == shown
    kantara = await module_api.get(f"/v1/receipts/{event_id}", params={"format": "kantara"})
    assert kantara.json()["receipt"]["collectionContext"] == shown

    erased = await module_api.post(
        f"/v1/subjects/{subject}/erasure", json={"ground": "consent_withdrawn"}
    )
    assert erased.status_code == 201, erased.text
    after = await _history(module_api, subject, erased.json()["token"])
    context = after[0]["payload"]["context"]
    assert context["client_address"] is None and context["user_agent"] is None
    assert context["unreadable"] == ["client_address", "user_agent"]
    assert context["page"] == "signup" and context["asserted"] == shown["asserted"]
    receipt = await module_api.get(f"/v1/receipts/{event_id}", params={"format": "iso27560"})
    assert receipt.json()["receipt"]["collection_method"]["context"]["client_address"] is None
    assert (
        "203.0.113.0/24"
        not in (
            await module_api.get(f"/v1/subjects/{subject}/history", params={"format": "csv"})
        ).text
    )
    verified = await module_api.get(f"/v1/subjects/{subject}/verify")
    assert verified.status_code == 200 and verified.json()["valid"] is True
