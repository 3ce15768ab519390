"""The public pages in Finnish, Swedish and English in headless chromium, against the real API
and projector: the unsubscribe page, the page after it, the preference page and an error page,
in each language as the link's sealed language, the browser's Accept-Language and the page's own
language switch choose it. Screenshots go to tests/artifacts/ (e.g. unsubscribe-confirm-fi.png)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

import httpx
import pytest

from services.rules.languages import LANGUAGES, NATIVE_NAMES
from tests.browser.test_public_pages import base, decision, grant, submit

if TYPE_CHECKING:
    from playwright.async_api import Page, Route

pytestmark = [pytest.mark.browser, pytest.mark.integration]

#: what each page says, by language
WORDS: Final[dict[str, dict[str, str]]] = {
    "fi": {
        "question": "Haluatko perua tilauksen: Uutiskirje sähköpostitse?",
        "button": "Peru tilaus",
        "done": "Tilauksesi on peruttu",
        "done_line": "Et saa enää viestejä: Uutiskirje sähköpostitse.",
        "choices": "Markkinointivalintasi \N{EN DASH} Example Controller",
        "label": "Uutiskirje: sähköpostitse",
        "save": "Tallenna valintani",
        "bad_link": "Tätä linkkiä ei voi käyttää",
        "bad_form": "Tätä lomaketta ei voi käyttää",
    },
    "sv": {
        "question": "Vill du avsluta prenumerationen: Nyhetsbrev via e-post?",
        "button": "Avsluta prenumerationen",
        "done": "Din prenumeration är avslutad",
        "done_line": "Du får inte längre: Nyhetsbrev via e-post.",
        "choices": "Dina marknadsföringsval hos Example Controller",
        "label": "Nyhetsbrev: via e-post",
        "save": "Spara mina val",
        "bad_link": "Den här länken kan inte användas",
        "bad_form": "Det här formuläret kan inte användas",
    },
    "en": {
        "question": "Unsubscribe from Newsletter by e-mail?",
        "button": "Unsubscribe",
        "done": "You are unsubscribed",
        "done_line": "You will no longer receive Newsletter by e-mail.",
        "choices": "Your marketing choices with Example Controller",
        "label": "Newsletter: by e-mail",
        "save": "Save my choices",
        "bad_link": "This link cannot be used",
        "bad_form": "This form cannot be used",
    },
}
#: a browser locale none of the pages speak, and the sealed language the switch moves away from
ELSEWHERE: Final = "de-DE"
OTHER: Final = {"fi": "sv", "sv": "en", "en": "fi"}
BROWSER_LOCALE: Final = {"fi": "fi-FI", "sv": "sv-FI", "en": "en-GB"}
HOW: Final = ("sealed", "accept_language", "switch")


async def issue(api: httpx.AsyncClient, subject: str, language: str | None) -> dict[str, Any]:
    body = {"subject_id": subject, "purpose": "newsletter", "channel": "email"}
    if language:
        body["language"] = language
    response = await api.post("/v1/unsubscribe-links", json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def speaks(page: Page, language: str, heading: str) -> None:
    """The page is in `language`: <html lang>, its h1, and its switch marking it current."""
    from playwright.async_api import expect

    assert await page.locator("html").get_attribute("lang") == language
    await expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    switch = page.get_by_role("navigation")
    current = switch.locator("a[aria-current=true]")
    await expect(current).to_have_count(1)
    await expect(current).to_have_text(NATIVE_NAMES[language])
    assert await page.context.cookies() == []


async def switch_to(page: Page, language: str) -> None:
    """Follow the page's own language switch: a plain link, with JavaScript off."""
    await page.get_by_role("link", name=NATIVE_NAMES[language], exact=True).click()
    await page.wait_for_load_state()
    assert urlsplit(page.url).query == f"lang={language}"


def shot(artifacts: Path, name: str, language: str, how: str) -> Path:
    suffix = "" if how == "sealed" else f"-{how.replace('_', '-')}"
    return artifacts / f"{name}-{language}{suffix}.png"


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize("language", LANGUAGES)
async def test_the_pages_in_each_language(
    api: httpx.AsyncClient, browser_for: Any, artifacts: Path, language: str, how: str
) -> None:
    from playwright.async_api import expect

    words = WORDS[language]
    sealed = {"sealed": language, "accept_language": None, "switch": OTHER[language]}[how]
    locale = BROWSER_LOCALE[language] if how == "accept_language" else ELSEWHERE
    page: Page = await browser_for(locale)
    subject = "s-" + uuid.uuid4().hex[:12]
    await grant(api, subject, "newsletter", "email")
    answer = await issue(api, subject, sealed)
    unsubscribe_path = urlsplit(answer["url"]).path

    # the unsubscribe question, then the page after it
    await page.goto(base(api) + unsubscribe_path)
    if how == "switch":
        await speaks(page, OTHER[language], WORDS[OTHER[language]]["question"])
        await switch_to(page, language)
    await speaks(page, language, words["question"])
    await page.screenshot(
        path=shot(artifacts, "unsubscribe-confirm", language, how), full_page=True
    )
    response = await submit(page, words["button"])
    assert response.status == 200
    await speaks(page, language, words["done"])
    await expect(page.get_by_role("status")).to_contain_text(words["done_line"])
    await page.screenshot(path=shot(artifacts, "unsubscribe-done", language, how), full_page=True)
    token = (await response.all_headers())["ledger-token"]
    assert not (await decision(api, subject, "newsletter", "email", token))["allowed"]

    # the preference page
    prefs = f"{base(api)}{urlsplit(answer['preferences_url']).path}?after={token}"
    await page.goto(prefs)
    if how == "switch":
        await switch_to(page, language)
    await speaks(page, language, words["choices"])
    await expect(page.get_by_label(words["label"])).not_to_be_checked()
    await page.screenshot(path=shot(artifacts, "preferences", language, how), full_page=True)
    response = await submit(page, words["save"])
    assert response.status == 200  # nothing changed, said in the page's language
    await speaks(page, language, words["choices"])

    # an error page: after the link opened (a form the page never sends) it speaks the sealed
    # language; an altered link cannot be read, so its page speaks the browser's or the switch's
    if how == "sealed":
        await page.goto(base(api) + unsubscribe_path)

        async def garble(route: Route) -> None:
            await route.continue_(post_data="List-Unsubscribe=Two-Clicks")

        await page.route("**/u/*", garble)
        response = await submit(page, words["button"])
        assert response.status == 400
        await speaks(page, language, words["bad_form"])
    else:
        altered = unsubscribe_path[:-4] + (
            "AAAA" if not unsubscribe_path.endswith("AAAA") else "BBBB"
        )
        answered = await page.goto(base(api) + altered)
        assert answered is not None and answered.status == 404
        if how == "switch":
            await switch_to(page, language)
        await speaks(page, language, words["bad_link"])
    await page.screenshot(path=shot(artifacts, "error", language, how), full_page=True)
