"""The decision rules: may we contact this subject, for this purpose, on this channel, now?

A pure function of the subject's projected state, the purpose's catalogue entry, the channel
and the clock. The precedence is the table of docs/integrators/decisions.md; every answer
names the events that justify it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final
from uuid import UUID

from projections.outdating import NO_NOTICES, Notices
from projections.state import (
    CHANNEL_IDENTIFIERS,
    CONSENT,
    CONSENT_REQUEST,
    DM_OBJECTION,
    ERASURE,
    PROCESSING_OBJECTION,
    RELATIONSHIP,
    RESTRICTION,
    SUPPRESSION,
    Fact,
    SubjectState,
    covering,
)
from schemas import events as ev
from services.rules.catalogue import Purpose

#: the reason for a purpose (or a channel of it) not in the catalogue at the instant decided
NOT_IN_CATALOGUE: Final = "not_in_catalogue"
REASONS: Final = (
    "consent_given",
    "legitimate_interest",
    "contract",
    "legal_obligation",
    "no_consent",
    "consent_withdrawn",
    "consent_expired",
    "consent_outdated",
    "opted_out",
    "objected_direct_marketing",
    "objected_processing",
    "restricted",
    "no_legal_basis",
    "unknown_subject",
    "erased",
    "suppressed",
    "confirmation_pending",
    "not_in_catalogue",
)
#: answers a pending sign-up replaces: it never takes away a grant that still stands, and the
#: refusals ranked above consent (erasure, restriction, objections) keep their own reason
_PENDING_REPLACES: Final = frozenset(
    {"no_consent", "consent_withdrawn", "consent_expired", "consent_outdated"}
)

#: resolutions after which a processing objection no longer stops processing
_CLEARING_OUTCOMES: Final = frozenset({"compelling_grounds", "withdrawn"})


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: str
    basis: str
    evidence: tuple[UUID, ...]
    #: the latest event of the rule that decided (None when no event did, e.g. no_consent)
    decided_by: Fact | None = None
    #: the lifts and resolutions that let a lower rule speak (part of `evidence`)
    cleared: tuple[Fact, ...] = ()


def unknown_subject(purpose: Purpose) -> Decision:
    """The answer for an e-mail address or phone number the ledger links to no subject:
    nobody has agreed to anything, so nothing is allowed (legal obligations included, since
    there is no one to owe them to)."""
    return Decision(False, "unknown_subject", purpose.basis, ())


def retired_purpose(purpose: Purpose) -> Decision:
    """The answer for a purpose retired by the instant asked about (`purpose` is its last
    definition): nothing may be done for a purpose the catalogue no longer holds."""
    return Decision(False, NOT_IN_CATALOGUE, purpose.basis, ())


def decide(
    state: SubjectState,
    purpose: Purpose,
    channel: str,
    now: datetime,
    notices: Notices = NO_NOTICES,
) -> Decision:
    """Apply the rules in precedence order; the first that speaks decides.

    `notices` are the published privacy notices: without them no grant is ever outdated. A
    sign-up waiting for its confirmation, newer than the consent event that answered and not
    expired, turns a refusal for lack of consent into `confirmation_pending` with the request
    as evidence; it never turns an allowed answer into a refusal."""
    decision = _decide(state, purpose, channel, now, notices)
    if decision.reason not in _PENDING_REPLACES:
        return decision
    request = covering(state, CONSENT_REQUEST, purpose.id, channel)
    if request is None or (request.until is not None and request.until <= now):
        return decision
    if decision.decided_by is not None and decision.decided_by.position > request.position:
        return decision
    # the lifts that let the consent rule speak, and the request, in log order
    facts = sorted((*decision.cleared, request), key=lambda f: f.position)
    evidence = tuple(dict.fromkeys(f.event_id for f in facts))
    return Decision(
        False, "confirmation_pending", purpose.basis, evidence, request, decision.cleared
    )


def _decide(
    state: SubjectState,
    purpose: Purpose,
    channel: str,
    now: datetime,
    notices: Notices,
) -> Decision:
    cleared: list[Fact] = []  # lifts and resolutions that let a later rule speak

    def answer(allowed: bool, reason: str, *deciding: Fact | None) -> Decision:
        facts = [f for f in (*cleared, *deciding) if f is not None]
        ordered = sorted(facts, key=lambda f: f.position)
        # one lift can clear several grounds: name each event once
        evidence = tuple(dict.fromkeys(f.event_id for f in ordered))
        deciders = [f for f in deciding if f is not None]
        decided_by = max(deciders, key=lambda f: f.position) if deciders else None
        return Decision(allowed, reason, purpose.basis, evidence, decided_by, tuple(cleared))

    erasure = state.get((ERASURE, "*", "*"))
    if erasure is not None and purpose.basis != "legal_obligation":
        return answer(False, "erased", erasure)

    if purpose.basis != "legal_obligation":
        restrictions, lifts = _restrictions(state, purpose.id)
        if restrictions:
            return answer(False, "restricted", *restrictions)
        cleared.extend(lifts)

    if purpose.direct_marketing:
        objection = covering(state, DM_OBJECTION, "*", channel)
        if objection is not None:
            if objection.event_type == ev.DIRECT_MARKETING_OBJECTED:
                return answer(False, "objected_direct_marketing", objection)
            cleared.append(objection)
        kind = CHANNEL_IDENTIFIERS.get(channel)
        suppressed = state.get((SUPPRESSION, kind, "*")) if kind else None
        # only the subject's own later lift of a direct-marketing objection clears it
        if suppressed is not None and (
            objection is None or objection.position < suppressed.position
        ):
            return answer(False, "suppressed", suppressed)

    processing = state.get((PROCESSING_OBJECTION, purpose.id, "*"))
    if processing is not None and purpose.basis != "legal_obligation":
        if processing.outcome not in _CLEARING_OUTCOMES:
            return answer(False, "objected_processing", processing)
        cleared.append(processing)

    if purpose.basis in ("consent", "legitimate_interest"):
        choice = covering(state, CONSENT, purpose.id, channel)
        if choice is not None:
            if choice.event_type == ev.CONSENT_WITHDRAWN:
                opted = "consent_withdrawn" if purpose.basis == "consent" else "opted_out"
                return answer(False, opted, choice)
            if choice.until is not None and choice.until <= now:
                return answer(False, "consent_expired", choice)
            changed = (
                notices.outdating(purpose.id, choice, now)
                if purpose.reconsent_on_material_change
                else None
            )
            if changed is not None:
                outdated = answer(False, "consent_outdated", choice)
                # the grant, then the NoticePublished of the change (on another key)
                evidence = (*outdated.evidence, changed.event_id)
                return Decision(
                    False, "consent_outdated", purpose.basis, evidence, choice, outdated.cleared
                )
            return answer(True, "consent_given", choice)

    if purpose.basis == "consent":
        return answer(False, "no_consent")
    if purpose.basis == "legal_obligation":
        return answer(True, "legal_obligation")
    bases = ("contract",) if purpose.basis == "contract" else ("contract", "legitimate_interest")
    relationship, ended = _relationship(state, bases, purpose.id, now)
    if relationship is not None:
        return answer(True, purpose.basis, relationship)
    return answer(False, "no_legal_basis", ended)


def _restrictions(state: SubjectState, purpose_id: str) -> tuple[list[Fact], list[Fact]]:
    """Active restrictions covering the purpose, and the lifts that ended earlier ones."""
    grounds = {f.scope_a for f in state.values() if f.kind == RESTRICTION and f.scope_a != "*"}
    active: list[Fact] = []
    lifts: list[Fact] = []
    for ground in sorted(grounds):
        f = covering(state, RESTRICTION, ground, purpose_id)
        if f is None:
            continue
        (active if f.event_type == ev.PROCESSING_RESTRICTED else lifts).append(f)
    return active, lifts


def _relationship(
    state: SubjectState, bases: tuple[str, ...], purpose_id: str, now: datetime
) -> tuple[Fact | None, Fact | None]:
    """The active relationship on one of `bases` covering the purpose, else the one that ended."""
    ended: Fact | None = None
    for basis in bases:
        f = covering(state, RELATIONSHIP, basis, purpose_id)
        if f is None:
            continue
        active = f.event_type == ev.RELATIONSHIP_RECORDED and (f.until is None or f.until > now)
        if active:
            return f, None
        if ended is None or f.position > ended.position:
            ended = f
    return None, ended
