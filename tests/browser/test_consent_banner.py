"""The banner script (/sdk/consent.js) in headless chromium, imported by a page on another origin
under a strict CSP: the banner in Finnish, Swedish and English (screenshots consent-banner-fi.png
etc. in tests/artifacts/), its three equally prominent choices, the keyboard, and the module's
exports against its declaration file. Recording choices against the real API is in
tests/browser/test_consent_recording.py."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import httpx
import pytest

from services.web.consent_script import CURRENT, DIRECTORY
from tests.browser.site_page import SiteConfig, site_page
from tests.browser.test_public_pages import base

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext, Page

pytestmark = [pytest.mark.browser, pytest.mark.integration]

#: what the banner says, by language
WORDS: Final = {
    "fi": ("Evästeet tällä sivustolla", "Hyväksy kaikki", "Hylkää kaikki", "Tallenna valinnat"),
    "sv": ("Kakor på den här webbplatsen", "Godkänn alla", "Avvisa alla", "Spara valen"),
    "en": ("Cookies on this site", "Accept all", "Reject all", "Save choices"),
}
CATEGORIES: Final = {
    "fi": ("Analytiikka", "Käyntiesi mukaan valitut mainokset"),
    "sv": ("Analys", "Annonser utifrån dina besök"),
    "en": ("Analytics", "Ads based on your visits"),
}


@pytest.fixture(scope="module")
def site(module_api: httpx.AsyncClient) -> Iterator[tuple[str, SiteConfig]]:
    """The page's origin; no site is registered: the banner shows before anything is asked."""
    with site_page(SiteConfig(ledger=base(module_api))) as served:
        yield served


@pytest.fixture
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    made = await browser.new_context(locale="en-GB")
    try:
        yield made
    finally:
        await made.close()


async def open_site(context: BrowserContext, url: str) -> Page:
    """Open the page and wait until the script's init() has settled."""
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(url)
    await page.wait_for_function("window.started !== undefined")
    assert await page.evaluate("window.started") is True, errors
    return page


async def look(page: Page, selector: str, prop: str) -> Any:
    return await page.locator(selector).evaluate(f"(e) => getComputedStyle(e)[{prop!r}]")


@pytest.mark.parametrize("lang", ["fi", "sv", "en"])
async def test_the_banner_speaks_the_pages_language(
    context: BrowserContext, site: tuple[str, SiteConfig], artifacts: Path, lang: str
) -> None:
    from playwright.async_api import expect

    origin, _ = site
    page = await open_site(context, f"{origin}/?lang={lang}")
    title, accept, reject, save = WORDS[lang]
    banner = page.get_by_role("dialog", name=title)
    await expect(banner).to_be_visible()
    await expect(banner).to_have_attribute("lang", lang)
    for name in (accept, reject, save):
        await expect(banner.get_by_role("button", name=name, exact=True)).to_be_visible()
    for label in CATEGORIES[lang]:
        await expect(banner.get_by_role("checkbox", name=label)).not_to_be_checked()
    assert await page.evaluate("window.consent.get()") == {
        "cookies_analytics": None,
        "cookies_marketing": None,
    }
    # nothing is allowed until the visitor chooses: onChange said so once, at init
    assert await page.evaluate("window.changes") == [
        {"cookies_analytics": None, "cookies_marketing": None}
    ]
    # the page's CSP allows no inline style: the constructed stylesheet still applies
    assert await look(page, "[data-consent-ledger] >> section", "position") == "fixed"
    assert await page.context.cookies() == []  # no device id before a choice is recorded
    await page.screenshot(path=artifacts / f"consent-banner-{lang}.png")


async def test_the_language_option_wins_over_the_page(
    context: BrowserContext, site: tuple[str, SiteConfig]
) -> None:
    from playwright.async_api import expect

    origin, config = site
    config.options = {"language": "sv"}
    try:
        page = await open_site(context, f"{origin}/?lang=fi")
    finally:
        config.options = {}
    await expect(page.get_by_role("dialog", name=WORDS["sv"][0])).to_be_visible()


async def test_the_three_choices_are_equally_prominent(
    context: BrowserContext, site: tuple[str, SiteConfig]
) -> None:
    origin, _ = site
    page = await open_site(context, f"{origin}/?lang=en")
    looks = []
    for name in WORDS["en"][1:]:
        button = page.get_by_role("button", name=name, exact=True)
        box = await button.bounding_box()
        assert box is not None
        style = await button.evaluate(
            "(e) => { const s = getComputedStyle(e);"
            " return [s.color, s.backgroundColor, s.fontSize, s.fontWeight, s.borderTopWidth,"
            " s.borderTopColor, s.borderRadius]; }"
        )
        looks.append((round(box["width"]), round(box["height"]), *style))
    assert looks[0] == looks[1] == looks[2], looks


async def test_the_banner_is_reached_and_used_by_keyboard(
    context: BrowserContext, site: tuple[str, SiteConfig]
) -> None:
    from playwright.async_api import expect

    origin, _ = site
    page = await open_site(context, f"{origin}/?lang=en")
    banner = page.get_by_role("dialog", name="Cookies on this site")
    await expect(banner).to_be_focused()  # the banner takes focus when it appears
    await page.keyboard.press("Tab")
    analytics = banner.get_by_role("checkbox", name="Analytics")
    await expect(analytics).to_be_focused()
    await page.keyboard.press("Space")
    await expect(analytics).to_be_checked()
    await page.keyboard.press("Tab")
    await expect(banner.get_by_role("checkbox", name="Ads based on your visits")).to_be_focused()
    order = []
    for _ in range(3):
        await page.keyboard.press("Tab")
        order.append(
            await page.evaluate("document.activeElement.shadowRoot.activeElement.textContent")
        )
        # the focused button shows it (:focus-visible), in the same way for each
        focused = "[data-consent-ledger] >> button:focus"
        assert await look(page, focused, "outlineStyle") == "solid"
        assert await look(page, focused, "outlineWidth") == "3px"
    assert order == ["Reject all", "Save choices", "Accept all"]


async def test_the_module_exports_what_its_declarations_declare(
    context: BrowserContext, site: tuple[str, SiteConfig]
) -> None:
    origin, _ = site
    page = await open_site(context, f"{origin}/?lang=en")
    exported = await page.evaluate("Object.entries(window.consent).map(([k, v]) => [k, typeof v])")
    dts = (DIRECTORY / f"consent-{CURRENT}.d.ts").read_text(encoding="utf-8")
    declared = re.findall(r"^export declare (function|const) (\w+)", dts, re.MULTILINE)
    kinds = {"function": "function", "const": "string"}
    assert sorted(exported) == sorted([name, kinds[kind]] for kind, name in declared)


async def test_misuse_is_a_clear_error_and_records_nothing(
    context: BrowserContext, site: tuple[str, SiteConfig]
) -> None:
    origin, _ = site
    page = await open_site(context, f"{origin}/?lang=en")
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if "/v1/" in r.url else None)
    failed = "(p) => p.then(() => 'resolved', (e) => `${e.name}: ${e.message}`)"
    for call in ("set({})", "set({cookies_analytics: 'yes'})", "set({newsletter: true})"):
        outcome = await page.evaluate(f"({failed})(window.consent.{call})")
        assert outcome.startswith("TypeError: consent.js: set needs"), (call, outcome)
    outcome = await page.evaluate(f"({failed})(window.consent.init({{key: 'pk_x'}}))")
    assert outcome == "TypeError: consent.js: init needs {ledger, key, purposes: [...]}"
    assert requests == []
