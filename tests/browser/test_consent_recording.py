"""The banner script records what each button says, against the real API and projector: a page
on another origin (registered for the site) imports /sdk/consent.js; "Accept all", "Reject all"
and a per-category save each record grants or withdrawals (method `banner`) for the device,
checked through GET /v1/decision and the subject's events; the choice survives a reload (no
banner, get() answers it); Global Privacy Control keeps marketing off (method `gpc`) unless
ticked; and a page on an origin the site does not list records nothing."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import httpx
import pytest

from services.web.consent_script import CURRENT
from tests.browser.site_page import PURPOSES, SiteConfig, site_page
from tests.browser.test_consent_banner import open_site
from tests.browser.test_public_pages import base, decision, events

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext, Page

pytestmark = [pytest.mark.browser, pytest.mark.integration]

COOKIE: Final = "consent_ledger_device"
COLLECT: Final = "/v1/collect/consents"
#: the device cookie's lifetime: 396 days (13 months)
LIFETIME_S: Final = 396 * 24 * 3600
GPC_ON: Final = (
    "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true})"
)


@pytest.fixture(scope="module")
def site(module_api: httpx.AsyncClient) -> Iterator[tuple[str, SiteConfig]]:
    with site_page(SiteConfig(ledger=base(module_api), script=f"/sdk/consent-{CURRENT}.js")) as s:
        yield s


@pytest.fixture(scope="module")
def foreign(site: tuple[str, SiteConfig]) -> Iterator[str]:
    """The same page and key on an origin the site does not list (another port)."""
    with site_page(site[1]) as (origin, _):
        yield origin


@pytest.fixture(scope="module")
async def registered(module_api: httpx.AsyncClient, site: tuple[str, SiteConfig]) -> str:
    origin, config = site
    body = {"name": "Example shop", "origins": [origin]}
    answer = await module_api.post("/v1/sites", json=body)
    assert answer.status_code == 201, answer.text
    config.key = answer.json()["key"]
    assert config.key.startswith("pk_")
    return origin


@pytest.fixture
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    made = await browser.new_context(locale="en-GB")
    try:
        yield made
    finally:
        await made.close()


@pytest.fixture
async def gpc_context(browser: Browser) -> AsyncIterator[BrowserContext]:
    """A browser with Global Privacy Control on: the header and the navigator property."""
    made = await browser.new_context(locale="en-GB", extra_http_headers={"Sec-GPC": "1"})
    await made.add_init_script(GPC_ON)
    try:
        yield made
    finally:
        await made.close()


async def press(page: Page, button: str) -> dict[str, Any]:
    """Click a banner button and return the ledger's 201 answer to the script's POST."""
    async with page.expect_response(lambda r: r.url.endswith(COLLECT)) as caught:
        await page.get_by_role("button", name=button, exact=True).click()
    response = await caught.value
    assert response.status == 201, await response.text()
    answer: dict[str, Any] = await response.json()
    return answer


async def recorded(
    api: httpx.AsyncClient, answer: dict[str, Any]
) -> dict[str, tuple[str, str, bool]]:
    """purpose -> (event type, method, allowed) for the device, read through the API."""
    subject, token = answer["subject_id"], answer["token"]
    assert subject == f"device:{answer['device_id']}"
    found: dict[str, tuple[str, str, bool]] = {}
    for event in await events(api, subject, token):
        payload = event["payload"]
        assert payload["channel"] == "web"
        allowed = (await decision(api, subject, payload["purpose"], "web", token))["allowed"]
        found[payload["purpose"]] = (event["type"], payload["source"]["method"], allowed)
    return found


async def banner_gone(page: Page) -> None:
    from playwright.async_api import expect

    await expect(page.get_by_role("dialog")).to_have_count(0)


async def device_cookie(page: Page) -> dict[str, Any]:
    cookies = [c for c in await page.context.cookies() if c["name"] == COOKIE]
    assert len(cookies) == 1, cookies
    return dict(cookies[0])


async def test_accept_all_records_grants_and_survives_a_reload(
    module_api: httpx.AsyncClient, registered: str, context: BrowserContext
) -> None:
    page = await open_site(context, f"{registered}/?lang=en")
    answer = await press(page, "Accept all")

    assert answer["choices"] == {"cookies_analytics": True, "cookies_marketing": True}
    assert await recorded(module_api, answer) == {
        "cookies_analytics": ("ConsentGranted", "banner", True),
        "cookies_marketing": ("ConsentGranted", "banner", True),
    }
    await banner_gone(page)
    everything = {"cookies_analytics": True, "cookies_marketing": True}
    assert await page.evaluate("window.consent.get()") == everything
    assert (await page.evaluate("window.changes"))[-1] == everything
    cookie = await device_cookie(page)
    assert cookie["value"] == answer["device_id"]
    assert (cookie["sameSite"], cookie["secure"], cookie["httpOnly"]) == ("Lax", False, False)
    assert abs(cookie["expires"] - (time.time() + LIFETIME_S)) < 600

    await page.reload()
    await page.wait_for_function("window.started !== undefined")
    assert await page.evaluate("window.started") is True
    await banner_gone(page)
    assert await page.evaluate("window.consent.get()") == everything
    assert await page.evaluate("window.changes") == [everything]


async def test_reject_all_records_withdrawals_with_the_evidence(
    module_api: httpx.AsyncClient,
    site: tuple[str, SiteConfig],
    registered: str,
    context: BrowserContext,
    artifacts: Path,
) -> None:
    config = site[1]
    config.options = {"noticeVersion": "2026-06"}
    try:
        page = await open_site(context, f"{registered}/shop/item?lang=fi#top")
    finally:
        config.options = {}
    answer = await press(page, "Hylkää kaikki")
    assert await recorded(module_api, answer) == {
        "cookies_analytics": ("ConsentWithdrawn", "banner", False),
        "cookies_marketing": ("ConsentWithdrawn", "banner", False),
    }
    # what the script sent and the ledger captured: the page without its query, the script's
    # version and language, the notice version
    for event in await events(module_api, answer["subject_id"], answer["token"]):
        payload = event["payload"]
        assert payload["source"]["collection_point"] == f"{registered}/shop/item"
        assert payload["notice_version"] == "2026-06"
        context_of = payload["context"]
        assert (context_of["page"], context_of["page_version"]) == ("banner", CURRENT)
        # the browser's user agent is there, encrypted under the device's data key
        assert context_of["language"] == "fi" and context_of["user_agent"]
    await banner_gone(page)
    assert await page.evaluate("window.consent.get()") == dict.fromkeys(PURPOSES, False)
    await page.screenshot(path=artifacts / "consent-banner-after-reject.png")


async def test_a_per_category_save_records_each_box_and_the_banner_shows_it_again(
    module_api: httpx.AsyncClient, registered: str, context: BrowserContext
) -> None:
    from playwright.async_api import expect

    page = await open_site(context, f"{registered}/?lang=sv")
    await page.get_by_role("checkbox", name="Analys").check()
    answer = await press(page, "Spara valen")
    assert await recorded(module_api, answer) == {
        "cookies_analytics": ("ConsentGranted", "banner", True),
        "cookies_marketing": ("ConsentWithdrawn", "banner", False),
    }
    chosen = {"cookies_analytics": True, "cookies_marketing": False}
    assert (await page.evaluate("window.changes"))[-1] == chosen

    await page.reload()
    await page.wait_for_function("window.started !== undefined")
    assert await page.evaluate("window.started") is True
    await banner_gone(page)
    assert await page.evaluate("window.consent.get()") == chosen
    await page.get_by_role("link", name="Cookie settings").click()  # showBanner()
    await expect(page.get_by_role("checkbox", name="Analys")).to_be_checked()
    await expect(
        page.get_by_role("checkbox", name="Annonser utifrån dina besök")
    ).not_to_be_checked()
    # the same device changes its mind: a withdrawal of analytics, marketing unchanged
    await page.get_by_role("checkbox", name="Analys").uncheck()
    again = await press(page, "Spara valen")
    assert again["device_id"] == answer["device_id"]
    decided = await decision(
        module_api, answer["subject_id"], "cookies_analytics", "web", again["token"]
    )
    assert decided["allowed"] is False


async def test_gpc_keeps_marketing_off_unless_ticked(
    module_api: httpx.AsyncClient,
    registered: str,
    gpc_context: BrowserContext,
    artifacts: Path,
) -> None:
    from playwright.async_api import expect

    page = await open_site(gpc_context, f"{registered}/?lang=en")
    banner = page.get_by_role("dialog", name="Cookies on this site")
    await expect(banner).to_contain_text("Your browser sends a Global Privacy Control signal")
    await expect(
        banner.get_by_role("checkbox", name="Ads based on your visits")
    ).not_to_be_checked()
    await page.screenshot(path=artifacts / "consent-banner-gpc-en.png")
    await banner.get_by_role("checkbox", name="Analytics").check()
    answer = await press(page, "Save choices")
    assert await recorded(module_api, answer) == {
        "cookies_analytics": ("ConsentGranted", "banner", True),
        "cookies_marketing": ("ConsentWithdrawn", "gpc", False),
    }
    assert await page.evaluate("window.consent.get()") == {
        "cookies_analytics": True,
        "cookies_marketing": False,
    }

    # an explicit tick under GPC is the visitor's own choice, recorded as given
    await page.get_by_role("link", name="Cookie settings").click()
    await page.get_by_role("checkbox", name="Ads based on your visits").check()
    ticked = await press(page, "Save choices")
    decided = await decision(
        module_api, ticked["subject_id"], "cookies_marketing", "web", ticked["token"]
    )
    assert decided["allowed"] is True

    # "Reject all" is the visitor's own act too: recorded with method banner, not gpc
    await page.get_by_role("link", name="Cookie settings").click()
    rejected = await press(page, "Reject all")
    history = await events(module_api, rejected["subject_id"], rejected["token"])
    last = history[-1]["payload"]
    assert (last["purpose"], last["type"], last["source"]["method"]) == (
        "cookies_marketing",
        "ConsentWithdrawn",
        "banner",
    )


async def test_a_page_on_a_foreign_origin_records_nothing(
    module_api: httpx.AsyncClient, registered: str, foreign: str, context: BrowserContext
) -> None:
    from playwright.async_api import expect

    page = await open_site(context, f"{registered}/?lang=en")
    answer = await press(page, "Reject all")
    before = await events(module_api, answer["subject_id"], answer["token"])

    # the same browser (so the same device cookie: it belongs to the host) on another origin
    # with the site's key: the ledger answers it nothing (to the page, no answer at all), so
    # the choices are unknown, every tag stays held back and the banner does not come up on
    # its own; opened, it cannot save
    other = await open_site(context, f"{foreign}/?lang=en")
    assert await other.evaluate("window.consent.get()") == dict.fromkeys(PURPOSES, None)
    await expect(other.get_by_role("dialog")).to_have_count(0)
    await other.evaluate("window.consent.showBanner()")
    await other.get_by_role("button", name="Accept all", exact=True).click()
    await expect(other.get_by_role("alert")).to_have_text(
        "Your choice could not be saved. Please try again."
    )
    await expect(other.get_by_role("dialog")).to_have_count(1)
    assert await other.evaluate("window.consent.get()") == dict.fromkeys(PURPOSES, None)
    assert await other.evaluate("window.changes") == [dict.fromkeys(PURPOSES, None)]

    after = await events(module_api, answer["subject_id"], answer["token"])
    assert after == before
    for purpose in PURPOSES:
        decided = await decision(module_api, answer["subject_id"], purpose, "web", answer["token"])
        assert decided["allowed"] is False
