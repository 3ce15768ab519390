"""The public pages' logic (pure): current choices, the submitted form, their difference, and
the events that record it; a form from an out-of-date page records nothing.

Design: docs/developers/design/public-pages.md
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from projections.outdating import NO_NOTICES, Notices
from projections.state import (
    ALL,
    CONSENT,
    DM_OBJECTION,
    RELATIONSHIP,
    Fact,
    Position,
    SubjectState,
    covering,
)
from schemas import events as ev
from schemas.events import Actor, Context, Event, Source
from services.rules.catalogue import Catalogue, Purpose
from services.rules.decisions import decide
from services.web.pages import Choice, PageLanguage, PurposeGroup

#: the form value of the "stop all direct marketing" box (and of the unsubscribe page's option)
ALL_DIRECT_MARKETING: Final = "all_direct_marketing"
#: the hidden field that carries the digest of the choices the page showed
SHOWN_FIELD: Final = "shown"
#: the collection point of what the preference page records: this, ":", the link's id
PREFERENCE_LINK: Final = "preference_link"
#: the actor id of what the preference page records: this, ":", the link's id
LINK_ACTOR: Final = "link"
#: the actor of what the unsubscribe page records
SUBJECT: Final = Actor(type="subject")
#: the pages, as the context of what they record names them (schemas/events.py `Context`)
UNSUBSCRIBE_PAGE: Final = "unsubscribe"
PREFERENCES_PAGE: Final = "preferences"
#: the hidden field the unsubscribe page's own form sends, and its one value: an RFC 8058
#: one-click POST from a mail client has only List-Unsubscribe=One-Click
FROM_FIELD: Final = "from"
FROM_PAGE: Final = "page"
_DIGEST_RE: Final = re.compile(r"[0-9a-f]{64}")
_CHOICE_KINDS: Final = frozenset({CONSENT, RELATIONSHIP})
_OBJECTION_KEY: Final = (DM_OBJECTION, ALL, ALL)


class FormError(ValueError):
    """The submitted form is not one the page sends; the message names the field."""


@dataclass(frozen=True, slots=True)
class Choices:
    """(purpose, channel) pairs the person wants, and whether they object to all marketing."""

    chosen: frozenset[tuple[str, str]]
    objected: bool


@dataclass(frozen=True, slots=True)
class Form:
    """A submitted preference form: the choices it asks for, and the digest of the choices
    the page showed (None: a form without one, from a page older than the digest)."""

    wanted: Choices
    shown: str | None


@dataclass(frozen=True, slots=True)
class Change:
    """One event the form asks for: its type, purpose and channel (None: every channel)."""

    type: str
    purpose: str | None = None
    channel: str | None = None


def current_choices(
    state: SubjectState, catalogue: Catalogue, now: datetime, notices: Notices = NO_NOTICES
) -> Choices:
    """A consent a material notice change outdated shows unticked: ticking it again is the
    re-consent (projections/outdating.py)."""
    own = {key: fact for key, fact in state.items() if fact.kind in _CHOICE_KINDS}
    chosen = frozenset(
        (p.id, channel)
        for p in catalogue.marketing_purposes()
        for channel in p.channels
        if decide(own, p, channel, now, notices).allowed
    )
    objection = state.get(_OBJECTION_KEY)
    objected = objection is not None and objection.event_type == ev.DIRECT_MARKETING_OBJECTED
    return Choices(chosen, objected)


def choices_digest(choices: Choices) -> str:
    """What identifies the choices a page shows: the same choices always give the same digest."""
    lines = sorted(f"{purpose}.{channel}" for purpose, channel in choices.chosen)
    lines.append(f"objected={choices.objected}")
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


def groups(catalogue: Catalogue, choices: Choices, language: PageLanguage) -> list[PurposeGroup]:
    """The preference page's fieldsets, in the catalogue's words for `language`."""
    return [
        PurposeGroup(
            p.id,
            p.text(language.code).title,
            p.text(language.code).description,
            tuple(
                Choice(p.id, c, (p.id, c) in choices.chosen, language.channel_phrase(c))
                for c in p.channels
            ),
        )
        for p in catalogue.marketing_purposes()
    ]


def parse_form(items: Iterable[tuple[str, str]], catalogue: Catalogue) -> Form:
    """What a submitted preference form asks for; anything the page never sends fails."""
    known = {(p.id, c) for p in catalogue.marketing_purposes() for c in p.channels}
    chosen: set[tuple[str, str]] = set()
    objected = False
    shown: str | None = None
    for name, value in items:
        if name == "choice":
            purpose, _, channel = value.partition(".")
            if (purpose, channel) not in known:
                raise FormError("choice: not a marketing purpose and channel on this page")
            chosen.add((purpose, channel))
        elif name == "object":
            if value != ALL_DIRECT_MARKETING:
                raise FormError(f"object: only {ALL_DIRECT_MARKETING!r} is accepted")
            objected = True
        elif name == SHOWN_FIELD:
            if shown is not None or not _DIGEST_RE.fullmatch(value):
                raise FormError(f"{SHOWN_FIELD}: one digest of 64 lowercase hex digits")
            shown = value
        else:
            raise FormError("the form has a field this page does not send")
    return Form(Choices(frozenset(chosen), objected), shown)


def one_click_post(items: Iterable[tuple[str, str]]) -> bool:
    """Whether an unsubscribe POST is a mail client's RFC 8058 one-click (no `from` field) or
    the page's own button (`from=page`); any other `from` is a form the page never sends."""
    sent = [value for name, value in items if name == FROM_FIELD]
    if sent and sent != [FROM_PAGE]:
        raise FormError(f"{FROM_FIELD}: only one {FROM_PAGE!r} is accepted")
    return not sent


def changes(current: Choices, wanted: Choices, purposes: Sequence[Purpose]) -> list[Change]:
    """The events that turn `current` into `wanted`: a lifted objection first, a new one last."""
    out: list[Change] = []
    if current.objected and not wanted.objected:
        out.append(Change(ev.DIRECT_MARKETING_OBJECTION_LIFTED))
    for purpose in purposes:
        for channel in purpose.channels:
            pair = (purpose.id, channel)
            if pair in wanted.chosen and pair not in current.chosen:
                out.append(Change(ev.CONSENT_GRANTED, purpose.id, channel))
            elif pair in current.chosen and pair not in wanted.chosen:
                out.append(Change(ev.CONSENT_WITHDRAWN, purpose.id, channel))
    if wanted.objected and not current.objected:
        out.append(Change(ev.DIRECT_MARKETING_OBJECTED))
    return out


@dataclass(frozen=True, slots=True)
class Pending:
    """A change an unsubscribe still has to record, and the fact it overrides (None: none)."""

    change: Change
    overrides: Fact | None


def unsubscribe_changes(
    state: SubjectState, purpose: str, channel: str, everything: bool
) -> tuple[list[Pending], list[Fact]]:
    """What an unsubscribe still has to record, and the facts that already record the rest.

    A withdrawal already in force for the link's purpose and channel (or wider) is not recorded
    again, nor is an all-channel objection; anything else is, even after an earlier unsubscribe
    that a later consent overrode.
    """
    todo: list[Pending] = []
    done: list[Fact] = []
    choice = covering(state, CONSENT, purpose, channel)
    if choice is not None and choice.event_type == ev.CONSENT_WITHDRAWN:
        done.append(choice)
    else:
        todo.append(Pending(Change(ev.CONSENT_WITHDRAWN, purpose, channel), choice))
    if everything:
        objection = state.get(_OBJECTION_KEY)
        if objection is not None and objection.event_type == ev.DIRECT_MARKETING_OBJECTED:
            done.append(objection)
        else:
            todo.append(Pending(Change(ev.DIRECT_MARKETING_OBJECTED), objection))
    return todo, done


def preference_source(system: str, link_id: str) -> Source:
    """The source of what the preference page records: the link's id is in the collection
    point, so every grant made there is traceable to the message that carried it."""
    return Source("preference_center", system, f"{PREFERENCE_LINK}:{link_id}")


def link_actor(link_id: str) -> Actor:
    """Who the preference page records as acting: the subject as far as the ledger can tell,
    which is whoever opened the subject's link `link_id` (the id says so; a forwarded message
    hands the link to someone else). Proof of consent (Art. 7(1)) rests on that link having
    gone to the subject's own address only."""
    return Actor(type="subject", id=f"{LINK_ACTOR}:{link_id}")


def lift_evidence(actor: Actor) -> str:
    """The evidence of a lift made on the preference page: what was done, and through which
    link."""
    through = f" opened with {actor.id}" if actor.id else ""
    return f"'stop all direct marketing' was unticked on the preference page{through}"


def link_key(token: str, change: Change) -> str:
    """The idempotency key of a link's first unsubscribe of one kind: the same for every click."""
    return f"unsubscribe:{hashlib.sha256(token.encode('ascii')).hexdigest()}:{change.type}"


def episode_key(first: str, earlier: Position | None, overrides: Fact | None) -> str:
    """The key for recording a link's change again: the first use's key, unless the person
    undid that change since (a consent or lift logged after it), which starts a new episode
    named by the undoing event. Repeats within an episode therefore share one key however far
    the projection lags: a fact projected late is older than the change and changes nothing.
    """
    if earlier is not None and overrides is not None and overrides.position > earlier:
        return f"{first}:{overrides.event_id}"
    return first


def to_events(
    todo: Sequence[Change],
    *,
    subject_id: str,
    now: datetime,
    source: Source,
    campaign_id: str | None,
    actor: Actor = SUBJECT,
    context: Context | None = None,
) -> list[Event]:
    """The events for `todo`, expressed by `actor` (the subject, or on the preference page
    whoever held its link: `link_actor`), each with the page's `context`; withdrawals and
    objections name the campaign whose message carried the link."""

    def data(change: Change) -> dict[str, Any]:
        match change.type:
            case ev.CONSENT_GRANTED:
                assert change.purpose is not None, "a grant names its purpose"
                return ev.grant_data(change.purpose, change.channel)
            case ev.CONSENT_WITHDRAWN:
                return {
                    "purpose": change.purpose,
                    "channel": change.channel,
                    "reason": None,
                    "campaign_id": campaign_id,
                }
            case ev.DIRECT_MARKETING_OBJECTED:
                return {"channel": change.channel, "campaign_id": campaign_id}
            case ev.DIRECT_MARKETING_OBJECTION_LIFTED:
                return {"channel": change.channel, "evidence": lift_evidence(actor)}
        raise ValueError(f"no event for {change.type}")

    return [
        Event(
            type=c.type,
            event_id=uuid.uuid4(),
            subject_id=subject_id,
            occurred_at=now,
            recorded_at=now,
            source=source,
            actor=actor,
            data={**data(c), **({"context": context} if context else {})},
        )
        for c in todo
    ]


def request_key(action: str, token: str, state: SubjectState, todo: Sequence[Change]) -> str:
    """An idempotency key for recording the preference form's `todo` over this state.

    A repeat before the first request is projected finds the same choices and so the same key:
    the ledger replays instead of recording again. Once the state has moved on, the changes
    are computed afresh (and usually are none). Only the facts the page shows count, so an
    unrelated event (a restriction, say) does not make a repeat look new."""
    shown = [f for f in state.values() if f.kind in _CHOICE_KINDS or f.key == _OBJECTION_KEY]
    parts = [action, hashlib.sha256(token.encode("ascii")).hexdigest()]
    parts += sorted(f"{'/'.join(f.key)}={f.event_id}" for f in shown)
    parts += [f"{c.type}:{c.purpose}:{c.channel}" for c in todo]
    return f"{action}:" + hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()
