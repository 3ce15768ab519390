"""The unsubscribe and preference pages in headless chromium, against the real API and projector.

Each step leaves a screenshot in tests/artifacts/ to look at after the run.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import pytest

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page, Response

pytestmark = [pytest.mark.browser, pytest.mark.integration]


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(java_script_enabled=False, locale="en-GB")
    try:
        yield await context.new_page()
    finally:
        await context.close()


def base(api: httpx.AsyncClient) -> str:
    return str(api.base_url).rstrip("/")


async def grant(api: httpx.AsyncClient, subject: str, purpose: str, channel: str) -> str:
    body = {"purpose": purpose, "channel": channel, "method": "form"}
    response = await api.post(f"/v1/subjects/{subject}/consents", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["token"])


async def link(api: httpx.AsyncClient, subject: str, campaign: str = "spring") -> dict[str, Any]:
    body = {
        "subject_id": subject,
        "purpose": "newsletter",
        "channel": "email",
        "campaign_id": campaign,
    }
    response = await api.post("/v1/unsubscribe-links", json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def decision(
    api: httpx.AsyncClient, subject: str, purpose: str, channel: str, token: str
) -> dict[str, Any]:
    params = {"subject_id": subject, "purpose": purpose, "channel": channel, "min_token": token}
    response = await api.get("/v1/decision", params=params)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def events(api: httpx.AsyncClient, subject: str, token: str) -> list[dict[str, Any]]:
    response = await api.get(f"/v1/subjects/{subject}/events", params={"min_token": token})
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["events"]
    return found


async def submit(page: Page, button: str) -> Response:
    """Click a submit button and return the POST's response (status, headers)."""
    async with page.expect_response(lambda r: r.request.method == "POST") as caught:
        await page.get_by_role("button", name=button).click()
    response = await caught.value
    await page.wait_for_load_state()
    return response


async def check_page(page: Page) -> None:
    """What every page owes a reader: a language, one main landmark, one h1, no cookies."""
    assert await page.locator("html").get_attribute("lang") == "en"
    assert await page.locator("main").count() == 1
    assert await page.get_by_role("heading", level=1).count() == 1
    assert await page.context.cookies() == []


async def test_unsubscribe_by_the_page_denies_at_once(
    api: httpx.AsyncClient, page: Page, artifacts: Path
) -> None:
    from playwright.async_api import expect

    subject = "s-" + uuid.uuid4().hex[:12]
    granted = await grant(api, subject, "newsletter", "email")
    answer = await link(api, subject)
    await page.goto(base(api) + urlsplit(answer["url"]).path)
    await check_page(page)
    await expect(page.get_by_role("heading", level=1)).to_have_text(
        "Unsubscribe from Newsletter by e-mail?"
    )
    await page.screenshot(path=artifacts / "unsubscribe-confirm.png", full_page=True)
    assert (await decision(api, subject, "newsletter", "email", granted))["allowed"]

    response = await submit(page, "Unsubscribe")

    assert response.status == 200
    headers = await response.all_headers()
    assert "location" not in headers and "set-cookie" not in headers
    await check_page(page)
    await expect(page.get_by_role("heading", level=1)).to_have_text("You are unsubscribed")
    await expect(page.get_by_role("status")).to_contain_text("Newsletter by e-mail")
    await page.screenshot(path=artifacts / "unsubscribe-done.png", full_page=True)
    denied = await decision(api, subject, "newsletter", "email", headers["ledger-token"])
    assert (denied["allowed"], denied["reason"]) == (False, "consent_withdrawn")

    # the /u/ pages lead nowhere but to themselves in another language: the preference link is
    # in the message body, never behind the List-Unsubscribe URL
    hrefs = [await a.get_attribute("href") for a in await page.get_by_role("link").all()]
    assert hrefs == ["?lang=fi", "?lang=sv", "?lang=en"]
    prefs = urlsplit(answer["preferences_url"]).path
    await page.goto(f"{base(api)}{prefs}?after={headers['ledger-token']}")
    await expect(page.get_by_label("Newsletter: by e-mail")).not_to_be_checked()


async def test_stop_all_direct_marketing_from_the_unsubscribe_page(
    api: httpx.AsyncClient, page: Page, artifacts: Path
) -> None:
    from playwright.async_api import expect

    subject = "s-" + uuid.uuid4().hex[:12]
    await grant(api, subject, "marketing_partners", "post")
    answer = await link(api, subject)
    await page.goto(base(api) + urlsplit(answer["url"]).path)
    await page.get_by_label("Also stop all marketing", exact=False).check()
    response = await submit(page, "Unsubscribe")
    await expect(page.get_by_role("status")).to_contain_text("no marketing at all")
    await page.screenshot(path=artifacts / "unsubscribe-all-done.png", full_page=True)
    token = (await response.all_headers())["ledger-token"]
    denied = await decision(api, subject, "marketing_partners", "post", token)
    assert (denied["allowed"], denied["reason"]) == (False, "objected_direct_marketing")
    logged = [
        (e["type"], e["payload"]["source"]["method"]) for e in await events(api, subject, token)
    ]
    assert logged[1:] == [
        ("ConsentWithdrawn", "unsubscribe_link"),
        ("DirectMarketingObjected", "unsubscribe_link"),
    ]


async def test_preference_page_changes_each_choice_by_its_label(
    api: httpx.AsyncClient, page: Page, artifacts: Path
) -> None:
    from playwright.async_api import expect

    subject = "s-" + uuid.uuid4().hex[:12]
    granted = await grant(api, subject, "newsletter", "email")
    answer = await link(api, subject)
    await decision(api, subject, "newsletter", "email", granted)
    await page.goto(base(api) + urlsplit(answer["preferences_url"]).path)
    await check_page(page)
    newsletter = page.get_by_label("Newsletter: by e-mail")
    partners_sms = page.get_by_label("Offers from our partners: by text message (SMS)")
    await expect(newsletter).to_be_checked()
    await expect(partners_sms).not_to_be_checked()
    await page.screenshot(path=artifacts / "preferences.png", full_page=True)

    await newsletter.uncheck()
    await partners_sms.check()
    response = await submit(page, "Save my choices")

    assert response.status == 200
    await expect(page.get_by_role("status")).to_have_text(
        "Your choices are saved. They take effect at once."
    )
    await expect(page.get_by_label("Newsletter: by e-mail")).not_to_be_checked()
    await expect(partners_sms).to_be_checked()
    await page.screenshot(path=artifacts / "preferences-saved.png", full_page=True)
    token = (await response.all_headers())["ledger-token"]
    assert not (await decision(api, subject, "newsletter", "email", token))["allowed"]
    assert (await decision(api, subject, "marketing_partners", "sms", token))["allowed"]
    logged = (await events(api, subject, token))[1:]
    assert [(e["type"], e["payload"]["source"]["method"]) for e in logged] == [
        ("ConsentWithdrawn", "preference_center"),
        ("ConsentGranted", "preference_center"),
    ]

    await page.get_by_label("Stop all marketing from Example Controller").check()
    response = await submit(page, "Save my choices")
    token = (await response.all_headers())["ledger-token"]
    denied = await decision(api, subject, "marketing_partners", "sms", token)
    assert denied["reason"] == "objected_direct_marketing"
    await page.screenshot(path=artifacts / "preferences-stop-all.png", full_page=True)


async def test_a_stale_preference_page_says_nothing_was_saved(
    api: httpx.AsyncClient, page: Page, artifacts: Path
) -> None:
    from playwright.async_api import expect

    subject = "s-" + uuid.uuid4().hex[:12]
    granted = await grant(api, subject, "newsletter", "email")
    answer = await link(api, subject)
    await decision(api, subject, "newsletter", "email", granted)
    await page.goto(base(api) + urlsplit(answer["preferences_url"]).path)
    await expect(page.get_by_label("Newsletter: by e-mail")).to_be_checked()
    other = await link(api, subject, campaign="autumn")
    unsubscribed = await api.post(
        urlsplit(other["url"]).path, data={"List-Unsubscribe": "One-Click"}
    )
    await events(api, subject, unsubscribed.headers["ledger-token"])

    response = await submit(page, "Save my choices")

    assert response.status == 409
    assert "ledger-token" not in await response.all_headers()
    await check_page(page)
    await expect(page.get_by_role("alert")).to_contain_text(
        "your choices changed since you opened this page"
    )
    await expect(page.get_by_label("Newsletter: by e-mail")).not_to_be_checked()
    await page.screenshot(path=artifacts / "preferences-stale.png", full_page=True)
    token = unsubscribed.headers["ledger-token"]
    assert not (await decision(api, subject, "newsletter", "email", token))["allowed"]


async def test_a_tampered_link_shows_a_page_that_reveals_nothing(
    api: httpx.AsyncClient, page: Page, artifacts: Path
) -> None:
    from playwright.async_api import expect

    subject = "s-" + uuid.uuid4().hex[:12]
    path = urlsplit((await link(api, subject))["url"]).path
    tampered = path[:-4] + ("AAAA" if not path.endswith("AAAA") else "BBBB")
    response = await page.goto(base(api) + tampered)
    assert response is not None and response.status == 404
    await check_page(page)
    await expect(page.get_by_role("heading", level=1)).to_have_text("This link cannot be used")
    assert subject not in await page.content()
    await page.screenshot(path=artifacts / "link-refused.png", full_page=True)
