"""The public pages' HTML: escaping, accessibility without JavaScript, labels tied to inputs."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from services.rules.languages import LANGUAGES
from services.web import pages
from services.web.pages import Message
from services.web.preferences import (
    ALL_DIRECT_MARKETING,
    Choices,
    choices_digest,
    groups,
)
from tests.unit.page_support import CATALOGUE, Page

EVIL = '<script>alert("x")</script> & Sons'


NL_ONLY = Choices(frozenset({("newsletter", "email")}), objected=False)
EN = pages.page_language("en")
NEWSLETTER = CATALOGUE.purposes["newsletter"]


def all_pages() -> dict[str, str]:
    prefs = groups(CATALOGUE, NL_ONLY, EN)
    evil = Message(EVIL)
    return {
        "unsubscribe": pages.unsubscribe_page(
            EN, controller=EVIL, purpose=replace(NEWSLETTER, texts=()), channel="email"
        ),
        "done": pages.done_page(EN, controller=EVIL, lines=[evil]),
        "error": pages.error_page(EN, controller=EVIL, heading=evil, message=evil),
        "preferences": pages.preferences_page(
            EN, controller=EVIL, groups=prefs, objected=True, shown="d", saved=evil, alert=evil
        ),
    }


@pytest.mark.parametrize("name", sorted(all_pages()))
def test_pages_escape_what_they_show(name: str) -> None:
    html = all_pages()[name]
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert "&amp; Sons" in html


@pytest.mark.parametrize("name", sorted(all_pages()))
def test_pages_are_accessible_without_javascript(name: str) -> None:
    page = Page(all_pages()[name])
    assert page.all("html")[0].get("lang") == "en"
    assert len(page.all("main")) == 1
    assert page.all("h1"), "a page needs a heading"
    assert not page.all("script")
    assert not any(k.startswith("on") for _, attrs in page.tags for k in attrs)
    for form in page.all("form"):
        assert form.get("method") == "post" and "action" not in form
    inputs = [i for i in page.all("input") if i.get("type") != "hidden"]
    for field in inputs:
        assert field.get("id") in page.label_text, f"input {field} has no <label for>"
        assert page.label_text[str(field.get("id"))].strip()


def test_preference_page_labels_name_purpose_and_channel() -> None:
    prefs = groups(CATALOGUE, NL_ONLY, EN)
    page = Page(
        pages.preferences_page(
            EN, controller="ACME", groups=prefs, objected=False, shown=choices_digest(NL_ONLY)
        )
    )
    boxes = {
        str(i["id"]): i
        for i in page.all("input")
        if i.get("name") == "choice" and i.get("type") == "checkbox"
    }
    expected = {(p.id, c) for p in CATALOGUE.marketing_purposes() for c in p.channels}
    assert {tuple(str(b["value"]).split(".")) for b in boxes.values()} == expected
    assert "checked" in boxes["c-newsletter-email"]
    assert "checked" not in boxes["c-marketing_own-sms"]
    label = " ".join(page.label_text["c-newsletter-email"].split())
    assert label == "Newsletter: by e-mail"
    names = [" ".join(t.split()) for t in page.label_text.values()]
    assert len(names) == len(set(names)), "two inputs share an accessible name"
    assert "ACME" in page.label_text["object-all"]


def test_unsubscribe_page_asks() -> None:
    html = pages.unsubscribe_page(EN, controller="ACME", purpose=NEWSLETTER, channel="email")
    page = Page(html)
    hidden = [i for i in page.all("input") if i.get("type") == "hidden"]
    assert hidden == [
        {"type": "hidden", "name": "List-Unsubscribe", "value": "One-Click"},
        {"type": "hidden", "name": "from", "value": "page"},
    ]
    scope = next(i for i in page.all("input") if i.get("name") == "scope")
    assert scope["value"] == ALL_DIRECT_MARKETING and "checked" not in scope
    assert re.search(r"<h1>Unsubscribe from Newsletter by e-mail\?</h1>", html)


@pytest.mark.parametrize("name", ["unsubscribe", "done"])
def test_the_unsubscribe_pages_link_nowhere(name: str) -> None:
    """The /u/ URL is the List-Unsubscribe one, which mailbox providers and anyone a message is
    forwarded to can see: its pages must not lead to the preference page, which can grant."""
    page = Page(all_pages()[name])
    assert [a["href"] for a in page.all("a")] == ["?lang=fi", "?lang=sv", "?lang=en"]
    assert "/p/" not in all_pages()[name]


def test_preference_page_carries_the_digest_of_what_it_shows() -> None:
    html = pages.preferences_page(
        EN, controller="ACME", groups=groups(CATALOGUE, NL_ONLY, EN), objected=False, shown="abc123"
    )
    hidden = [i for i in Page(html).all("input") if i.get("type") == "hidden"]
    assert hidden == [{"type": "hidden", "name": "shown", "value": "abc123"}]
    assert 'role="alert"' not in html


def test_preference_page_alert_is_announced() -> None:
    html = pages.preferences_page(
        EN,
        controller="ACME",
        groups=groups(CATALOGUE, NL_ONLY, EN),
        objected=False,
        shown="d",
        alert=Message("Nothing was saved"),
    )
    alerts = [a for a in Page(html).all("div") if a.get("role") == "alert"]
    assert len(alerts) == 1 and "Nothing was saved" in html


@pytest.mark.parametrize(
    ("code", "heading", "label", "switch_name"),
    [
        ("fi", "Haluatko perua tilauksen: Uutiskirje sähköpostitse?", "Peru tilaus", "Kieli"),
        ("sv", "Vill du avsluta prenumerationen: Nyhetsbrev via e-post?",
         "Avsluta prenumerationen", "Språk"),
        ("en", "Unsubscribe from Newsletter by e-mail?", "Unsubscribe", "Language"),
    ],
)  # fmt: skip
def test_a_page_speaks_its_language_and_offers_the_others(
    code: str, heading: str, label: str, switch_name: str
) -> None:
    language = pages.page_language(code)
    html = pages.unsubscribe_page(language, controller="ACME", purpose=NEWSLETTER, channel="email")
    page = Page(html)
    assert page.all("html")[0]["lang"] == code
    assert f"<h1>{heading}</h1>" in html
    assert f'<button type="submit">{label}</button>' in html
    assert NEWSLETTER.text(code).description in html
    assert page.all("nav")[0]["aria-label"] == switch_name
    links = page.all("a")
    assert [(a["href"], a["lang"]) for a in links] == [(f"?lang={c}", c) for c in LANGUAGES]
    assert [a["href"] for a in links if a.get("aria-current") == "true"] == [f"?lang={code}"]


@pytest.mark.parametrize("code", LANGUAGES)
def test_preference_labels_and_messages_follow_the_language(code: str) -> None:
    language = pages.page_language(code)
    prefs = groups(CATALOGUE, NL_ONLY, language)
    newsletter = next(g for g in prefs if g.id == "newsletter")
    assert (newsletter.title, newsletter.description) == (
        NEWSLETTER.text(code).title,
        NEWSLETTER.text(code).description,
    )
    assert newsletter.choices[0].label == language.channel_phrase("email")
    saved = Message("Your choices are saved. They take effect at once.")
    html = pages.preferences_page(
        language, controller="ACME", groups=prefs, objected=False, shown="d", saved=saved
    )
    assert saved.in_language(language) in html
    assert (saved.in_language(language) == saved.text) is (code == "en")


def test_a_message_fills_its_placeholders_after_translating() -> None:
    waited = Message(
        "There were too many requests. Nothing was changed. Try again in %(seconds)s s.",
        {"seconds": 7},
    )
    assert waited.in_language(pages.page_language("fi")) == (
        "Pyyntöjä tuli liian monta. Mitään ei muutettu. Yritä uudelleen 7 sekunnin kuluttua."
    )


def test_only_the_pages_languages_exist() -> None:
    with pytest.raises(ValueError, match="accepted: fi, sv, en"):
        pages.page_language("de")
