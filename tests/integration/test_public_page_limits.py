"""The public pages' rate limits against the real API, projector, broker and PostgreSQL
(security review findings L1, L9): one-click unsubscribes beyond the per-address limit all
record their withdrawal, preference saves are limited per subject, and the 429 is an HTML page
with the pages' headers. The limit per IPv6 /64 is checked in-process:
tests/unit/services/api/test_public_page_limits.py."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from services.config import Settings
from services.web.page_responses import HEADERS
from tests.conftest import make_settings, running_api, running_projector
from tests.integration.access_support import client_of
from tests.integration.unsubscribe_support import (
    ONE_CLICK,
    decision,
    grant,
    history,
    issue,
    new_subject,
    path_of,
    shown,
)
from tests.servers import Servers

pytestmark = pytest.mark.integration

PER_ADDRESS = 3
SAVES = 2


@pytest.fixture(scope="module")
async def limited_settings(real_servers: Servers) -> Settings:
    return await make_settings(
        real_servers,
        LEDGER_PUBLIC_RATE_PER_MIN=str(PER_ADDRESS),
        LEDGER_PREFERENCE_SAVES_PER_MIN=str(SAVES),
    )


@pytest.fixture(scope="module")
async def limited_api(limited_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with running_projector(limited_settings), running_api(limited_settings) as client:
        yield client


def client(address: str) -> dict[str, str]:
    """Headers of a request from `address` (named by the trusted loopback proxy)."""
    return {"X-Forwarded-For": address}


def check_page_429(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"].startswith("text/html")
    for name, value in HEADERS.items():
        assert response.headers[name] == value, name
    assert 1 <= int(response.headers["retry-after"]) <= 60
    assert "<h1>Please wait a moment</h1>" in response.text
    assert "Nothing was changed" in response.text
    assert "ledger-token" not in response.headers


async def test_one_click_posts_beyond_the_per_address_limit_all_record_their_withdrawal(
    limited_api: httpx.AsyncClient,
) -> None:
    """A mailbox provider posts the one-click unsubscribes of many recipients from one
    address: far more than that address's limit, and every one is recorded."""
    provider = client("2001:db8:f00d:1::25")
    recipients = []
    for _ in range(4 * PER_ADDRESS):
        subject = new_subject()
        token = await grant(limited_api, subject, "newsletter", "email")
        answer = await issue(limited_api, subject_id=subject, purpose="newsletter", channel="email")
        recipients.append((subject, token, path_of(answer["url"])))
    async with client_of(limited_api) as anonymous:
        posted = [
            await anonymous.post(url, data=ONE_CLICK, headers=provider) for *_, url in recipients
        ]
        assert [p.status_code for p in posted] == [200] * len(recipients)
        for (subject, _, _), done in zip(recipients, posted, strict=True):
            denied = await decision(
                limited_api, subject, "newsletter", "email", done.headers["ledger-token"]
            )
            assert (denied["allowed"], denied["reason"]) == (False, "consent_withdrawn")
        # the provider's address has spent nothing: its pages still answer
        page = await anonymous.get(recipients[0][2], headers=provider)
        assert page.status_code == 200
        # an invalid link is not exempt: it spends from the address like any request
        bad = [
            (await anonymous.post("/u/AwJsMQnotatoken", data=ONE_CLICK, headers=provider))
            for _ in range(PER_ADDRESS)
        ]
        assert [b.status_code for b in bad] == [404] * (PER_ADDRESS - 1) + [429]


async def test_preference_saves_are_limited_per_subject(limited_api: httpx.AsyncClient) -> None:
    """Two saves a minute for one subject, from any address and any of its links; the third
    is the 429 page and records nothing."""
    subject = new_subject()
    token = await grant(limited_api, subject, "newsletter", "email")
    answers = [
        await issue(limited_api, subject_id=subject, purpose="newsletter", channel="email")
        for _ in range(SAVES + 1)
    ]
    choices = [["newsletter.email", "profiling.web"], ["newsletter.email"], ["profiling.web"]]
    saved = []
    async with client_of(limited_api) as anonymous:
        for n, (answer, choice) in enumerate(zip(answers, choices, strict=True)):
            address = client(f"198.51.100.{n + 1}")
            path = path_of(answer["preferences_url"])
            page = await anonymous.get(path, params={"after": token}, headers=address)
            assert page.status_code == 200, page.text
            response = await anonymous.post(
                path, data={"shown": shown(page), "choice": choice}, headers=address
            )
            saved.append(response)
            if response.status_code == 200:
                token = response.headers["ledger-token"]
    assert [s.status_code for s in saved] == [200] * SAVES + [429]
    check_page_429(saved[-1])
    events = await history(limited_api, subject, token)
    assert [(e["type"], e["payload"]["purpose"]) for e in events] == [
        ("ConsentGranted", "newsletter"),
        ("ConsentGranted", "profiling"),
        ("ConsentWithdrawn", "profiling"),
    ]


async def test_a_revoked_link_cannot_use_up_the_subjects_saves(
    limited_api: httpx.AsyncClient,
) -> None:
    """Whoever holds a leaked link that support revoked gets the invalid-link page however
    often they post, and the person's own saves through a new link are still recorded."""
    subject = new_subject()
    token = await grant(limited_api, subject, "newsletter", "email")
    leaked = await issue(limited_api, subject_id=subject, purpose="newsletter", channel="email")
    async with client_of(limited_api) as anonymous:
        page = await anonymous.get(
            path_of(leaked["preferences_url"]),
            params={"after": token},
            headers=client("192.0.2.71"),
        )
        form = {"shown": shown(page), "choice": ["newsletter.email", "profiling.web"]}
        revoked = await limited_api.post(f"/v1/subjects/{subject}/links/revoke", json={})
        assert revoked.status_code == 201, revoked.text
        token = revoked.json()["token"]
        # once the revocation is projected (a GET waits for it), the leaked link is dead
        gone = await anonymous.get(
            path_of(leaked["preferences_url"]),
            params={"after": token},
            headers=client("192.0.2.72"),
        )
        assert gone.status_code == 404, gone.text
        for n in range(SAVES + 2):
            refused = await anonymous.post(
                path_of(leaked["preferences_url"]), data=form, headers=client(f"203.0.113.{n + 1}")
            )
            assert refused.status_code == 404, refused.text
        fresh = await issue(limited_api, subject_id=subject, purpose="newsletter", channel="email")
        path = path_of(fresh["preferences_url"])
        mine = client("192.0.2.73")  # the person, from an address of their own
        page = await anonymous.get(path, params={"after": token}, headers=mine)
        saved = await anonymous.post(
            path,
            data={"shown": shown(page), "choice": ["newsletter.email", "profiling.web"]},
            headers=mine,
        )
        assert saved.status_code == 200, saved.text
