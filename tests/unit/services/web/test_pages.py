"""The public pages' HTML: escaping, accessibility without JavaScript, labels tied to inputs."""

from __future__ import annotations

import re

import pytest

from services.web import pages
from services.web.preferences import (
    ALL_DIRECT_MARKETING,
    Choices,
    choices_digest,
    groups,
)
from tests.unit.page_support import CATALOGUE, Page

EVIL = '<script>alert("x")</script> & Sons'


NL_ONLY = Choices(frozenset({("newsletter", "email")}), objected=False)


def all_pages() -> dict[str, str]:
    prefs = groups(CATALOGUE, NL_ONLY)
    return {
        "unsubscribe": pages.unsubscribe_page(controller=EVIL, purpose_title=EVIL, channel="email"),
        "done": pages.done_page(controller=EVIL, lines=[EVIL]),
        "error": pages.error_page(controller=EVIL, heading=EVIL, message=EVIL),
        "preferences": pages.preferences_page(
            controller=EVIL, groups=prefs, objected=True, shown="d", saved=EVIL, alert=EVIL
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
    prefs = groups(CATALOGUE, NL_ONLY)
    page = Page(
        pages.preferences_page(
            controller="ACME", groups=prefs, objected=False, shown=choices_digest(NL_ONLY)
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
    html = pages.unsubscribe_page(controller="ACME", purpose_title="Newsletter", channel="email")
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
    assert page.all("a") == []
    assert "/p/" not in all_pages()[name]


def test_preference_page_carries_the_digest_of_what_it_shows() -> None:
    html = pages.preferences_page(
        controller="ACME", groups=groups(CATALOGUE, NL_ONLY), objected=False, shown="abc123"
    )
    hidden = [i for i in Page(html).all("input") if i.get("type") == "hidden"]
    assert hidden == [{"type": "hidden", "name": "shown", "value": "abc123"}]
    assert 'role="alert"' not in html


def test_preference_page_alert_is_announced() -> None:
    html = pages.preferences_page(
        controller="ACME",
        groups=groups(CATALOGUE, NL_ONLY),
        objected=False,
        shown="d",
        alert="Nothing was saved",
    )
    alerts = [a for a in Page(html).all("div") if a.get("role") == "alert"]
    assert len(alerts) == 1 and "Nothing was saved" in html
