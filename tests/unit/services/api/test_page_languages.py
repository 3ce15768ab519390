"""The public pages' language against the app in-process: `?lang=` first, then Accept-Language,
then LEDGER_DEFAULT_LANGUAGE, on the 404 and 429 pages (no link opens here, so no sealed
language); and `language` on POST /v1/unsubscribe-links, sealed in both links or refused with a
422 naming it. Pages chosen by a sealed language are in tests/browser/test_page_languages.py."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import pytest

from services.config import Settings, SettingsError
from services.identity.links import PREFERENCES, UNSUBSCRIBE, open_token
from tests.unit.services.api.in_process import serving

NOT_USABLE = {
    "fi": "<h1>Tätä linkkiä ei voi käyttää</h1>",
    "sv": "<h1>Den här länken kan inte användas</h1>",
    "en": "<h1>This link cannot be used</h1>",
}


@pytest.mark.parametrize(
    ("query", "accept_language", "default", "expected"),
    [
        ("", "sv-FI", "en", "sv"),
        ("", "de-DE,de;q=0.9,fi;q=0.8", "en", "fi"),
        ("?lang=fi", "sv-FI", "en", "fi"),
        ("?lang=de", "sv", "en", "sv"),
        ("", "de", "fi", "fi"),
        ("", None, "sv", "sv"),
        ("", "en-GB", "fi", "en"),
    ],
    ids=["accept-language", "q-values", "switch-wins", "unknown-switch", "default-setting",
         "no-header", "en-GB"],
)  # fmt: skip
async def test_the_404_page_speaks_the_chosen_language(
    query: str, accept_language: str | None, default: str, expected: str
) -> None:
    headers = {"accept-language": accept_language} if accept_language else {}
    async with serving(LEDGER_DEFAULT_LANGUAGE=default) as served, served.client() as anonymous:
        for path in ("/u/no-token", "/p/no-token"):
            response = await anonymous.get(path + query, headers=headers)
            assert response.status_code == 404
            assert f'<html lang="{expected}">' in response.text
            assert NOT_USABLE[expected] in response.text
            assert "set-cookie" not in response.headers


async def test_the_429_page_speaks_the_chosen_language() -> None:
    async with serving(LEDGER_PUBLIC_RATE_PER_MIN="1") as served, served.client() as anonymous:
        await anonymous.get("/u/no-token")
        response = await anonymous.get("/u/no-token?lang=sv")
    assert response.status_code == 429
    assert '<html lang="sv">' in response.text and "<h1>Vänta en stund</h1>" in response.text
    seconds = response.headers["retry-after"]
    assert f"Försök igen om {seconds} sekunder." in response.text


@pytest.mark.parametrize("value", ["de", "FI", "", "english"])
def test_the_default_language_is_checked_at_start_up(value: str) -> None:
    with pytest.raises(SettingsError, match=r"LEDGER_DEFAULT_LANGUAGE=.*one of fi, sv, en"):
        Settings.from_env({"LEDGER_DEFAULT_LANGUAGE": value})


BODY: dict[str, Any] = {"subject_id": "s-lang", "purpose": "newsletter", "channel": "email"}


@pytest.mark.parametrize("language", ["fi", "sv", "en", None])
async def test_both_links_carry_the_language_asked_for(language: str | None) -> None:
    body = BODY if language is None else {**BODY, "language": language}
    async with serving() as served:
        response = await served.api.post("/v1/unsubscribe-links", json=body)
        keys = served.settings.secrets().links
    assert response.status_code == 200, response.text
    answer = response.json()
    now = datetime.now(UTC)
    for url, kind in ((answer["url"], UNSUBSCRIBE), (answer["preferences_url"], PREFERENCES)):
        token = urlsplit(url).path.rsplit("/", 1)[1]
        assert open_token(keys, token, now, kind=kind).language == language


@pytest.mark.parametrize("value", ["de", "FI", "sv-FI", 1, ["fi"]])
async def test_a_language_the_pages_do_not_speak_is_a_422_naming_it(value: object) -> None:
    async with serving() as served:
        response = await served.api.post("/v1/unsubscribe-links", json={**BODY, "language": value})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    errors = response.json()["errors"]
    assert [e["field"] for e in errors] == ["language"]
    assert errors[0]["accepted"] == ["fi", "sv", "en"]
