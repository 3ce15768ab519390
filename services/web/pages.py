"""Rendering the public pages: Jinja2 templates with autoescaping, no JavaScript, no cookies, in
the language the request chose (services/rules/languages.py), from gettext catalogues.

A new page is a template under templates/ that extends base.html, a function here (or a direct
`render` call) and its messages in the catalogues (services/web/locale/, docs/integrators/
languages.md says how to update them).

Design: docs/developers/design/public-pages.md
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from gettext import GNUTranslations
from typing import Any, Final

from jinja2 import Environment, PackageLoader, StrictUndefined

from services.rules.catalogue import Purpose
from services.rules.languages import LANGUAGES, NATIVE_NAMES
from services.web.translations import catalogue_translations


def N_(message: str) -> str:
    """Marks a message for extraction (Babel's default keyword) without translating it yet:
    it is translated when the page is rendered, in the page's language."""
    return message


#: how a channel reads after a purpose: "Newsletter by e-mail"
CHANNEL_PHRASES: Final = {
    "email": N_("by e-mail"),
    "sms": N_("by text message (SMS)"),
    "phone": N_("by phone"),
    "post": N_("by post"),
    "web": N_("on our websites"),
}
EVERY_CHANNEL: Final = N_("on every channel")
#: a channel the table above does not know yet
OTHER_CHANNEL: Final = N_("by %(channel)s")


@dataclass(frozen=True, slots=True)
class PageLanguage:
    """The language a page speaks, and its translations: what every page function takes."""

    code: str
    translations: GNUTranslations = field(repr=False, compare=False)

    def gettext(self, message: str, **values: object) -> str:
        """`message` (a msgid) in this language, with `%(name)s` placeholders filled."""
        text = self.translations.gettext(message)
        return text % values if values else text

    def channel_phrase(self, channel: str | None) -> str:
        if channel is None:
            return self.gettext(EVERY_CHANNEL)
        phrase = CHANNEL_PHRASES.get(channel)
        return self.gettext(phrase) if phrase else self.gettext(OTHER_CHANNEL, channel=channel)


@functools.cache
def page_language(code: str) -> PageLanguage:
    """The language `code` (one of LANGUAGES), its catalogue read once per process."""
    if code not in LANGUAGES:
        raise ValueError(f"no pages in {code!r}; accepted: {', '.join(LANGUAGES)}")
    return PageLanguage(code, catalogue_translations(code))


#: the auditor's page (services/web/audit_view.py) is for the controller's staff: English only
LANG: Final = "en"


def channel_phrase(channel: str | None) -> str:
    """A channel's phrase in English, for the auditor's page."""
    return page_language(LANG).channel_phrase(channel)


@functools.cache
def _environment(code: str) -> Environment:
    """One Jinja environment per language, with that language's gettext installed: the
    templates' {% trans %} blocks and _() calls read it (newstyle: values are escaped)."""
    env = Environment(
        loader=PackageLoader("services.web", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.i18n"],
    )
    env.policies["ext.i18n.trimmed"] = True
    translations = page_language(code).translations
    env.install_gettext_translations(translations, newstyle=True)  # type: ignore[attr-defined]
    return env


@dataclass(frozen=True, slots=True)
class Message:
    """Words a page shows that the code picks: a msgid and the values of its placeholders."""

    text: str
    values: Mapping[str, object] = field(default_factory=dict)

    def in_language(self, language: PageLanguage) -> str:
        return language.gettext(self.text, **self.values)


def render(template: str, language: PageLanguage, *, controller: str, **values: Any) -> str:
    """A page in `language`: `template` extends base.html, which sets <html lang> and the
    language switch (links to the same page with `?lang=`)."""
    switch = [(code, NATIVE_NAMES[code]) for code in LANGUAGES]
    return (
        _environment(language.code)
        .get_template(template)
        .render(lang=language.code, switch=switch, controller=controller, **values)
    )


@dataclass(frozen=True, slots=True)
class Choice:
    """One checkbox of the preference page: a purpose on a channel."""

    purpose: str
    channel: str
    checked: bool
    label: str

    @property
    def field_id(self) -> str:
        return f"c-{self.purpose}-{self.channel}"

    @property
    def value(self) -> str:
        return f"{self.purpose}.{self.channel}"


@dataclass(frozen=True, slots=True)
class PurposeGroup:
    """A purpose's checkboxes, shown as one fieldset with the purpose's title as its legend."""

    id: str
    title: str
    description: str
    choices: tuple[Choice, ...]


def unsubscribe_page(
    language: PageLanguage, *, controller: str, purpose: Purpose, channel: str | None
) -> str:
    """GET /u/{token}: asks to confirm; showing it records nothing. The /u/ pages never link
    to the preference page: their URL is the List-Unsubscribe one, which others may see, and
    the preference page can grant consent (its link is in the message body instead)."""
    text = purpose.text(language.code)
    return render(
        "unsubscribe.html",
        language,
        controller=controller,
        purpose_title=text.title,
        purpose_description=text.description,
        channel_phrase=language.channel_phrase(channel),
    )


def done_page(
    language: PageLanguage,
    *,
    controller: str,
    lines: Sequence[Message],
    applied: bool = True,
) -> str:
    """After a withdrawal: what was recorded, in plain words; `applied` says whether it has
    taken effect already (services/http/applied.py)."""
    return render(
        "done.html",
        language,
        controller=controller,
        lines=[line.in_language(language) for line in lines],
        applied=applied,
    )


def error_page(
    language: PageLanguage, *, controller: str, heading: Message, message: Message
) -> str:
    """Any refusal; the caller passes the same words for every cause a link can fail on."""
    return render(
        "error.html",
        language,
        controller=controller,
        heading=heading.in_language(language),
        message=message.in_language(language),
    )


def preferences_page(
    language: PageLanguage,
    *,
    controller: str,
    groups: Sequence[PurposeGroup],
    objected: bool,
    shown: str,
    saved: Message | None = None,
    alert: Message | None = None,
) -> str:
    """GET and POST /p/{token}: every marketing purpose and channel, ticked where chosen.
    `shown` is the digest of these choices, sent back with the form; `saved` is a status
    line, `alert` one that says nothing was saved."""
    return render(
        "preferences.html",
        language,
        controller=controller,
        groups=list(groups),
        objected=objected,
        shown=shown,
        saved=saved.in_language(language) if saved else None,
        alert=alert.in_language(language) if alert else None,
    )


def confirm_page(
    language: PageLanguage, *, controller: str, purpose: Purpose, channel: str | None
) -> str:
    """GET /c/{token}: what the person is about to confirm, and the button; showing it records
    nothing (mail scanners open links)."""
    text = purpose.text(language.code)
    return render(
        "confirm.html",
        language,
        controller=controller,
        purpose_title=text.title,
        purpose_description=text.description,
        channel_phrase=language.channel_phrase(channel),
    )


def confirmed_page(
    language: PageLanguage,
    *,
    controller: str,
    purpose: Purpose,
    channel: str | None,
    standing: str,
) -> str:
    """After the confirmation, and whenever its link is opened again: how the subscription
    stands (services/web/confirmation.py: given, being applied, ended since, held back by an
    earlier request)."""
    return render(
        "confirmed.html",
        language,
        controller=controller,
        purpose_title=purpose.text(language.code).title,
        channel_phrase=language.channel_phrase(channel),
        standing=standing,
    )
