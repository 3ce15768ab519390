"""The sign-up confirmation pages (double opt-in) in headless chromium, in Finnish, Swedish and
English, against the real API and projector: the question (opening it changes nothing), the
confirmation (a decision asked at once, without a token, allows), a repeat (nothing new), and
the expired, altered and erased-subject pages. Screenshots go to tests/artifacts/
(e.g. signup-confirm-fi.png)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

import httpx
import pytest

from services.config import Settings
from services.identity import links
from services.rules.languages import LANGUAGES
from tests.browser.test_page_languages import BROWSER_LOCALE, speaks
from tests.browser.test_public_pages import base, submit

if TYPE_CHECKING:
    from playwright.async_api import Page

pytestmark = [pytest.mark.browser, pytest.mark.integration]

NL: Final = {"purpose": "newsletter", "channel": "email"}
#: what each page says, by language
WORDS: Final[dict[str, dict[str, str]]] = {
    "fi": {
        "confirm": "Vahvista tilauksesi",
        "button": "Kyllä, tilaan",
        "confirmed": "Tilaus vahvistettu",
        "status": "Example Controller lähettää sinulle: Uutiskirje sähköpostitse.",
        "expired": "Tämä vahvistuslinkki on vanhentunut",
        "erased": "Tietosi on poistettu",
        "bad_link": "Tätä linkkiä ei voi käyttää",
    },
    "sv": {
        "confirm": "Bekräfta din prenumeration",
        "button": "Ja, jag vill prenumerera",
        "confirmed": "Prenumerationen är bekräftad",
        "status": "Example Controller skickar dig: Nyhetsbrev via e-post.",
        "expired": "Den här bekräftelselänken har gått ut",
        "erased": "Dina uppgifter har raderats",
        "bad_link": "Den här länken kan inte användas",
    },
    "en": {
        "confirm": "Confirm your subscription",
        "button": "Yes, subscribe me",
        "confirmed": "Subscription confirmed",
        "status": "You will receive Newsletter by e-mail from Example Controller.",
        "expired": "This confirmation link has expired",
        "erased": "Your details have been erased",
        "bad_link": "This link cannot be used",
    },
}


async def sign_up(api: httpx.AsyncClient, subject: str, language: str) -> dict[str, Any]:
    response = await api.post(f"/v1/subjects/{subject}/signups", json={**NL, "language": language})
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def reason_now(api: httpx.AsyncClient, subject: str, token: str | None = None) -> str:
    params = {"subject_id": subject, **NL, **({"min_token": token} if token else {})}
    response = await api.get("/v1/decision", params=params)
    assert response.status_code == 200, response.text
    return str(response.json()["reason"])


async def event_types(api: httpx.AsyncClient, subject: str, token: str) -> list[str]:
    response = await api.get(f"/v1/subjects/{subject}/events", params={"min_token": token})
    assert response.status_code == 200, response.text
    return [e["type"] for e in response.json()["events"]]


@pytest.mark.parametrize("language", LANGUAGES)
async def test_a_sign_up_is_confirmed_in_its_language(
    api: httpx.AsyncClient, browser_for: Any, artifacts: Path, language: str
) -> None:
    from playwright.async_api import expect

    words = WORDS[language]
    subject = "s-" + uuid.uuid4().hex[:12]
    signup = await sign_up(api, subject, language)
    url = base(api) + urlsplit(signup["confirm_url"]).path
    page: Page = await browser_for("de-DE")  # the sealed language wins over the browser's

    await page.goto(url)
    await speaks(page, language, words["confirm"])
    await page.screenshot(path=artifacts / f"signup-confirm-{language}.png", full_page=True)
    assert await reason_now(api, subject, signup["token"]) == "confirmation_pending"
    assert await event_types(api, subject, signup["token"]) == ["ConsentRequested"]

    response = await submit(page, words["button"])
    assert response.status == 200
    await speaks(page, language, words["confirmed"])
    await expect(page.get_by_role("status")).to_have_text(words["status"])
    await page.screenshot(path=artifacts / f"signup-confirmed-{language}.png", full_page=True)
    assert await reason_now(api, subject) == "consent_given"  # no token: the page waited

    # the link again (a second click in the mail) says it is confirmed; a repeated POST (the
    # button of a page opened before) answers the same, and nothing new is recorded
    await page.goto(url)
    await speaks(page, language, words["confirmed"])
    await expect(page.get_by_role("button")).to_have_count(0)
    again = await page.request.post(url, form={"confirm": "yes"})
    assert again.status == 200 and words["confirmed"] in await again.text()
    token = again.headers["ledger-token"]
    assert await event_types(api, subject, token) == ["ConsentRequested", "ConsentGranted"]


@pytest.mark.parametrize("language", LANGUAGES)
async def test_expired_altered_and_erased_links_record_nothing(
    api: httpx.AsyncClient, settings: Settings, browser_for: Any, artifacts: Path, language: str
) -> None:
    words = WORDS[language]
    page: Page = await browser_for(BROWSER_LOCALE[language])

    # expired: the sealed language cannot be read any more, the browser's is used
    past = datetime.now(UTC) - timedelta(days=8)
    expired = links.issue(
        settings.secrets().links,
        kind=links.CONFIRM,
        subject_id="s-" + uuid.uuid4().hex[:12],
        purpose="newsletter",
        channel="email",
        campaign_id=None,
        now=past,
        ttl=timedelta(days=7),
        language=language,
    )
    answered = await page.goto(f"{base(api)}/c/{expired}")
    assert answered is not None and answered.status == 410
    await speaks(page, language, words["expired"])
    await page.screenshot(path=artifacts / f"signup-expired-{language}.png", full_page=True)

    subject = "s-" + uuid.uuid4().hex[:12]
    signup = await sign_up(api, subject, language)
    path = urlsplit(signup["confirm_url"]).path
    altered = path[:-4] + ("AAAA" if not path.endswith("AAAA") else "BBBB")
    answered = await page.goto(base(api) + altered)
    assert answered is not None and answered.status == 404
    await speaks(page, language, words["bad_link"])

    erased = await api.post(f"/v1/subjects/{subject}/erasure", json={"ground": "objection"})
    assert erased.status_code == 201, erased.text
    token = erased.json()["token"]
    assert await event_types(api, subject, token) == ["ConsentRequested", "SubjectErased"]
    answered = await page.goto(base(api) + path)
    assert answered is not None and answered.status == 410
    await speaks(page, language, words["erased"])
    await page.screenshot(path=artifacts / f"signup-erased-{language}.png", full_page=True)
    assert await event_types(api, subject, token) == ["ConsentRequested", "SubjectErased"]
