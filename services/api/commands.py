"""Commands: each request body becomes the events it appends (pure; no I/O here).

A builder reads and validates every field, then returns the events, so a bad request is
refused before anything reaches the log.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from schemas import events as ev
from schemas.events import CHANNELS, METHODS, Actor, Event, Source
from services.http.body import Fields
from services.http.event_context import CONTEXT, asserted_context, context_data
from services.rules.catalogue import Catalogue, Purpose

#: how far ahead of the ledger's clock an occurred_at may be (clock skew of the caller)
MAX_CLOCK_SKEW: Final = timedelta(minutes=5)

#: default actor per collection method: who expressed the choice when the caller does not say
DEFAULT_ACTOR: Final = {
    "form": "subject",
    "double_opt_in": "subject",
    "unsubscribe_link": "subject",
    "preference_center": "subject",
    "support": "staff",
    "import": "system",
    "api": "system",
    "banner": "subject",
    "gpc": "subject",
}


@dataclass(frozen=True, slots=True)
class Context:
    subject_id: str
    now: datetime
    catalogue: Catalogue


Builder = Callable[[Fields, Context], list[Event]]


class Common:
    """The fields every command shares: source, method, actor, occurred_at."""

    def __init__(self, f: Fields, ctx: Context) -> None:
        self.ctx = ctx
        src = f.object("source")
        system = src.text("system", max_len=200, free_text=True) if src else None
        point = src.text("collection_point", max_len=200, free_text=True) if src else None
        f.merge(src)
        method = f.choice("method", METHODS, default="api") or "api"
        if method == ev.DOUBLE_OPT_IN:
            # only the ledger's own confirmation of a sign-up may say it was confirmed
            f.error(
                "method",
                "double_opt_in is recorded only when a person confirms a sign-up through the"
                " ledger's link: POST /v1/subjects/{subject_id}/signups",
            )
        self.source = Source(method=method, system=system, collection_point=point)
        act = f.object("actor")
        actor_type = act.choice("type", ev.ACTOR_TYPES, required=True) if act else None
        actor_id = act.text("id", max_len=128, free_text=True) if act else None
        f.merge(act)
        if actor_type is None:
            actor_type = DEFAULT_ACTOR[method]
            actor_id = system if actor_type == "system" else None
        self.actor = Actor(type=actor_type, id=actor_id)
        occurred = f.instant("occurred_at")
        if occurred is not None and occurred > ctx.now + MAX_CLOCK_SKEW:
            f.error("occurred_at", "is in the future")
        self.occurred_at = occurred or ctx.now

    def event(self, type_: str, data: dict[str, Any], notice: str | None = None) -> Event:
        return Event(
            type=type_,
            event_id=uuid.uuid4(),
            subject_id=self.ctx.subject_id,
            occurred_at=self.occurred_at,
            recorded_at=self.ctx.now,
            source=self.source,
            actor=self.actor,
            notice_version=notice,
            data=data,
        )


def _purpose(
    f: Fields, ctx: Context, name: str = "purpose", *, required: bool = False
) -> Purpose | None:
    pid = f.choice(name, ctx.catalogue.ids, required=required)
    return ctx.catalogue.get(pid) if pid else None


def _channel(f: Fields, purpose: Purpose | None) -> str | None:
    return f.choice("channel", purpose.channels if purpose else CHANNELS)


def _later(f: Fields, name: str, common: Common) -> datetime | None:
    moment = f.instant(name)
    if moment is not None and moment <= common.occurred_at:
        f.error(name, "must be later than occurred_at")
    return moment


def grant_consent(f: Fields, ctx: Context) -> list[Event]:
    """Record the subject's consent to a purpose (optionally lifting a DM objection)."""
    common = Common(f, ctx)
    purpose = _purpose(f, ctx, required=True)
    if purpose and purpose.basis not in ("consent", "legitimate_interest"):
        f.error("purpose", f"{purpose.id!r} rests on {purpose.basis}; consent does not apply")
    channel = _channel(f, purpose)
    notice = f.text("notice_version", max_len=64, free_text=True)
    expires = _later(f, "expires_at", common)
    lift = f.flag("lift_objection")
    context = asserted_context(f)
    f.finish()
    assert purpose is not None
    grant = common.event(
        ev.CONSENT_GRANTED,
        {**ev.grant_data(purpose.id, channel, expires), **context_data(context)},
        notice,
    )
    if not lift:
        return [grant]
    evidence = "lift_objection requested with consent " + str(grant.event_id)
    lifted = common.event(
        ev.DIRECT_MARKETING_OBJECTION_LIFTED,
        {"channel": channel, "evidence": evidence, **context_data(context)},
    )
    return [lifted, grant]


def withdraw_consent(f: Fields, ctx: Context) -> list[Event]:
    """Record a withdrawal of consent: one purpose or all, one channel or all."""
    common = Common(f, ctx)
    purpose = _purpose(f, ctx)
    channel = _channel(f, purpose)
    reason = f.text("reason", max_len=500, free_text=True)
    context = asserted_context(f)
    f.finish()
    data = {
        "purpose": purpose.id if purpose else None,
        "channel": channel,
        "reason": reason,
        **context_data(context),
    }
    return [common.event(ev.CONSENT_WITHDRAWN, data)]


OBJECTION_KINDS: Final = ("direct_marketing", "processing")


def _objection_target(f: Fields, ctx: Context) -> tuple[str | None, Purpose | None, str | None]:
    kind = f.choice("kind", OBJECTION_KINDS, required=True)
    purpose = _purpose(f, ctx, required=kind == "processing")
    channel = None
    if kind == "direct_marketing":
        if purpose is not None:
            f.error("purpose", "not used for direct_marketing objections: they cover every purpose")
        channel = f.choice("channel", CHANNELS)
    elif f.raw("channel") is not None:
        f.error("channel", "only direct_marketing objections take a channel")
    if kind == "processing":
        _objectable(f, purpose)
    return kind, purpose, channel


def _objection_context(f: Fields, kind: str | None) -> ev.Context | None:
    """The asserted context of a direct-marketing objection or its lift; processing
    objections carry none (their events have no context field)."""
    if kind == "processing" and f.raw(CONTEXT) is not None:
        f.error(CONTEXT, "only direct_marketing objections and their lifts carry a context")
        return None
    return asserted_context(f)


def _objectable(f: Fields, purpose: Purpose | None) -> None:
    """GDPR Art. 21(1): the right to object covers processing on legitimate interests only."""
    if purpose is None or purpose.basis == "legitimate_interest":
        return
    instead = {"consent": "; record a withdrawal instead"}.get(purpose.basis, "")
    f.error(
        "purpose",
        f"{purpose.id!r} rests on {purpose.basis}: processing objections (Art. 21(1)) apply"
        f" to legitimate-interest purposes{instead}",
    )


def object_(f: Fields, ctx: Context) -> list[Event]:
    """Record an objection: to direct marketing (Art. 21(2)) or to processing (Art. 21(1))."""
    common = Common(f, ctx)
    kind, purpose, channel = _objection_target(f, ctx)
    context = _objection_context(f, kind)
    f.finish()
    if kind == "direct_marketing":
        data = {"channel": channel, **context_data(context)}
        return [common.event(ev.DIRECT_MARKETING_OBJECTED, data)]
    assert purpose is not None
    return [common.event(ev.PROCESSING_OBJECTED, {"purpose": purpose.id})]


def lift_objection(f: Fields, ctx: Context) -> list[Event]:
    """Record that the subject lifted an objection, with evidence of the request."""
    common = Common(f, ctx)
    kind, purpose, channel = _objection_target(f, ctx)
    evidence = f.text("evidence", required=True, max_len=1000, free_text=True)
    context = _objection_context(f, kind)
    f.finish()
    if kind == "direct_marketing":
        data = {"channel": channel, "evidence": evidence, **context_data(context)}
        return [common.event(ev.DIRECT_MARKETING_OBJECTION_LIFTED, data)]
    assert purpose is not None
    data = {"purpose": purpose.id, "outcome": "withdrawn", "evidence": evidence}
    return [common.event(ev.PROCESSING_OBJECTION_RESOLVED, data)]


def resolve_objection(f: Fields, ctx: Context) -> list[Event]:
    """Record the outcome of assessing a processing objection."""
    common = Common(f, ctx)
    purpose = _purpose(f, ctx, required=True)
    _objectable(f, purpose)
    outcome = f.choice("outcome", ("upheld", "compelling_grounds"), required=True)
    evidence = f.text("evidence", max_len=1000, free_text=True)
    f.finish()
    assert purpose is not None
    data = {"purpose": purpose.id, "outcome": outcome, "evidence": evidence}
    return [common.event(ev.PROCESSING_OBJECTION_RESOLVED, data)]


def restrict(f: Fields, ctx: Context) -> list[Event]:
    """Record a restriction of processing (Art. 18) on one of its four grounds."""
    common = Common(f, ctx)
    ground = f.choice("ground", ev.RESTRICTION_GROUNDS, required=True)
    purposes = f.choices("purposes", ctx.catalogue.ids)
    f.finish()
    return [common.event(ev.PROCESSING_RESTRICTED, {"ground": ground, "purposes": purposes})]


def lift_restriction(f: Fields, ctx: Context) -> list[Event]:
    """Record that a restriction was lifted (the subject was told first, Art. 18(3))."""
    common = Common(f, ctx)
    ground = f.choice("ground", ev.RESTRICTION_GROUNDS)
    purposes = f.choices("purposes", ctx.catalogue.ids)
    evidence = f.text("evidence", max_len=1000, free_text=True)
    informed = f.instant("subject_informed_at", required=True)
    if informed is not None and informed > common.occurred_at:
        f.error(
            "subject_informed_at",
            "must not be later than occurred_at: the subject is told before the lift (Art. 18(3))",
        )
    f.finish()
    data = {
        "ground": ground,
        "purposes": purposes,
        "evidence": evidence,
        "subject_informed_at": informed,
    }
    return [common.event(ev.RESTRICTION_LIFTED, data)]


def record_relationship(f: Fields, ctx: Context) -> list[Event]:
    """Record a contract or legitimate-interest relationship with the subject."""
    common = Common(f, ctx)
    basis = f.choice("basis", ev.RELATIONSHIP_BASES, required=True)
    purposes = f.choices("purposes", ctx.catalogue.ids)
    valid_until = _later(f, "valid_until", common)
    f.finish()
    data = {"basis": basis, "purposes": purposes, "valid_until": valid_until}
    return [common.event(ev.RELATIONSHIP_RECORDED, data)]


def end_relationship(f: Fields, ctx: Context) -> list[Event]:
    """Record that a relationship ended."""
    common = Common(f, ctx)
    basis = f.choice("basis", ev.RELATIONSHIP_BASES)
    purposes = f.choices("purposes", ctx.catalogue.ids)
    evidence = f.text("evidence", max_len=1000, free_text=True)
    f.finish()
    data = {"basis": basis, "purposes": purposes, "evidence": evidence}
    return [common.event(ev.RELATIONSHIP_ENDED, data)]


def revoke_links(f: Fields, ctx: Context) -> list[Event]:
    """Revoke the subject's preference links issued so far (its unsubscribe links stay)."""
    common = Common(f, ctx)
    reason = f.text("reason", max_len=500, free_text=True)
    f.finish()
    return [common.event(ev.LINKS_REVOKED, {"reason": reason})]


#: path under /v1/subjects/{subject_id}/ -> builder
COMMANDS: Final[dict[str, Builder]] = {
    "consents": grant_consent,
    "withdrawals": withdraw_consent,
    "objections": object_,
    "objections/lift": lift_objection,
    "objections/resolve": resolve_objection,
    "restrictions": restrict,
    "restrictions/lift": lift_restriction,
    "relationships": record_relationship,
    "relationships/end": end_relationship,
    "links/revoke": revoke_links,
}
