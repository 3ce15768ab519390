"""Rendering the public pages: Jinja2 templates with autoescaping, no JavaScript, no cookies."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from jinja2 import Environment, PackageLoader, StrictUndefined

LANG: Final = "en"

#: how a channel reads after a purpose: "Newsletter by e-mail"
CHANNEL_PHRASES: Final = {
    "email": "by e-mail",
    "sms": "by text message (SMS)",
    "phone": "by phone",
    "post": "by post",
    "web": "on our websites",
}

_ENV: Final = Environment(
    loader=PackageLoader("services.web", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True, slots=True)
class Choice:
    """One checkbox of the preference page: a purpose on a channel."""

    purpose: str
    channel: str
    checked: bool

    @property
    def field_id(self) -> str:
        return f"c-{self.purpose}-{self.channel}"

    @property
    def value(self) -> str:
        return f"{self.purpose}.{self.channel}"

    @property
    def label(self) -> str:
        return channel_phrase(self.channel)


@dataclass(frozen=True, slots=True)
class PurposeGroup:
    """A purpose's checkboxes, shown as one fieldset with the purpose's title as its legend."""

    id: str
    title: str
    choices: tuple[Choice, ...]


def channel_phrase(channel: str | None) -> str:
    if channel is None:
        return "on every channel"
    return CHANNEL_PHRASES.get(channel, f"by {channel}")


def _render(name: str, controller: str, **values: Any) -> str:
    return _ENV.get_template(name).render(lang=LANG, controller=controller, **values)


def unsubscribe_page(*, controller: str, purpose_title: str, channel: str | None) -> str:
    """GET /u/{token}: asks to confirm; showing it records nothing. The /u/ pages never link
    to the preference page: their URL is the List-Unsubscribe one, which others may see, and
    the preference page can grant consent (its link is in the message body instead)."""
    return _render(
        "unsubscribe.html",
        controller,
        purpose_title=purpose_title,
        channel_phrase=channel_phrase(channel),
    )


def done_page(*, controller: str, lines: Sequence[str], applied: bool = True) -> str:
    """After a withdrawal: what was recorded, in plain words; `applied` says whether it has
    taken effect already (services/web/applied.py)."""
    return _render("done.html", controller, lines=list(lines), applied=applied)


def error_page(*, controller: str, heading: str, message: str) -> str:
    """Any refusal; the caller passes the same words for every cause a link can fail on."""
    return _render("error.html", controller, heading=heading, message=message)


def preferences_page(
    *,
    controller: str,
    groups: Sequence[PurposeGroup],
    objected: bool,
    shown: str,
    saved: str | None = None,
    alert: str | None = None,
) -> str:
    """GET and POST /p/{token}: every marketing purpose and channel, ticked where chosen.
    `shown` is the digest of these choices, sent back with the form; `saved` is a status
    line, `alert` one that says nothing was saved."""
    return _render(
        "preferences.html",
        controller,
        groups=list(groups),
        objected=objected,
        shown=shown,
        saved=saved,
        alert=alert,
    )


def confirm_page(*, controller: str, purpose_title: str, channel: str | None) -> str:
    """GET /c/{token}: what the person is about to confirm, and the button; showing it records
    nothing (mail scanners open links)."""
    return _render(
        "confirm.html",
        controller,
        purpose_title=purpose_title,
        channel_phrase=channel_phrase(channel),
    )


def confirmed_page(
    *, controller: str, purpose_title: str, channel: str | None, applied: bool = True
) -> str:
    """After the confirmation: the same page for the first POST and every repeat."""
    return _render(
        "confirmed.html",
        controller,
        purpose_title=purpose_title,
        channel_phrase=channel_phrase(channel),
        applied=applied,
    )
