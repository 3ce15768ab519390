"""A subject's projected state as a pure fold of its events.

Consents, objections, restrictions and relationships all share one shape: for every *scope*
(purpose or channel, or "*" for all) keep the latest event in log order. The latest event
covering a question is then the latest among the few scopes that cover it, so the state stays
small no matter how long the history is, and applying events in any order (a replay, a retry,
two projectors racing) ends in the same state.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final
from uuid import UUID

from schemas import events as ev
from schemas.events import Event

ALL: Final = "*"

CONSENT: Final = "consent"
DM_OBJECTION: Final = "dm_objection"
PROCESSING_OBJECTION: Final = "processing_objection"
RESTRICTION: Final = "restriction"
RELATIONSHIP: Final = "relationship"
#: a sign-up waiting for its confirmation (ConsentRequested): scope (purpose, channel), until
#: the request's expires_at; it only speaks when no grant answers (services/rules/decisions.py)
CONSENT_REQUEST: Final = "consent_request"
#: the subject was erased (SubjectErased): scope (*, *)
ERASURE: Final = "erasure"
#: an identifier the subject holds is suppressed because another subject that held it was
#: erased; scope (identifier type, *). Not set by the subject's own events but by the
#: projector (projections/erasure.py), so `fold` never yields it
SUPPRESSION: Final = "suppression"
#: the identifier type that reaches each channel a suppression can stop
CHANNEL_IDENTIFIERS: Final = {"email": "email", "sms": "phone", "phone": "phone"}

#: (partition, offset): the order of a subject's events, all on one partition.
Position = tuple[int, int]
FactKey = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class Fact:
    """The latest event for one (kind, scope_a, scope_b) of a subject."""

    kind: str
    scope_a: str
    scope_b: str
    event_type: str
    event_id: UUID
    position: Position
    occurred_at: datetime
    #: expires_at of a grant, valid_until of a relationship
    until: datetime | None = None
    #: outcome of a processing-objection resolution
    outcome: str | None = None
    #: the privacy-notice version a grant was given under (projections/notices.py)
    notice_version: str | None = None

    @property
    def key(self) -> FactKey:
        return (self.kind, self.scope_a, self.scope_b)


SubjectState = Mapping[FactKey, Fact]


def facts_for(event: Event, position: Position) -> list[Fact]:
    """The facts one event sets; an event that covers several purposes sets one per purpose."""
    data = event.data

    def fact(kind: str, a: str | None, b: str | None, **extra: object) -> Fact:
        return Fact(
            kind,
            a or ALL,
            b or ALL,
            event.type,
            event.event_id,
            position,
            event.occurred_at,
            **extra,  # type: ignore[arg-type]
        )

    purposes: list[str | None] = list(data.get("purposes") or []) or [None]
    match event.type:
        case ev.CONSENT_GRANTED:
            return [
                fact(
                    CONSENT,
                    data["purpose"],
                    data.get("channel"),
                    until=data.get("expires_at"),
                    notice_version=event.notice_version,
                )
            ]
        case ev.CONSENT_REQUESTED:
            return [
                fact(
                    CONSENT_REQUEST,
                    data["purpose"],
                    data["channel"],
                    until=data["expires_at"],
                    notice_version=event.notice_version,
                )
            ]
        case ev.CONSENT_WITHDRAWN:
            return [fact(CONSENT, data.get("purpose"), data.get("channel"))]
        case ev.DIRECT_MARKETING_OBJECTED | ev.DIRECT_MARKETING_OBJECTION_LIFTED:
            return [fact(DM_OBJECTION, None, data.get("channel"))]
        case ev.PROCESSING_OBJECTED:
            return [fact(PROCESSING_OBJECTION, data["purpose"], None)]
        case ev.PROCESSING_OBJECTION_RESOLVED:
            return [fact(PROCESSING_OBJECTION, data["purpose"], None, outcome=data["outcome"])]
        case ev.PROCESSING_RESTRICTED | ev.RESTRICTION_LIFTED:
            return [fact(RESTRICTION, data.get("ground"), p) for p in purposes]
        case ev.RELATIONSHIP_RECORDED:
            until = data.get("valid_until")
            return [fact(RELATIONSHIP, data["basis"], p, until=until) for p in purposes]
        case ev.RELATIONSHIP_ENDED:
            return [fact(RELATIONSHIP, data.get("basis"), p) for p in purposes]
        case ev.SUBJECT_ERASED:
            return [fact(ERASURE, None, None)]
    return []


def latest(facts: Iterable[Fact]) -> dict[FactKey, Fact]:
    """Keep, per key, the fact with the highest log position (the projector's batch reduction)."""
    out: dict[FactKey, Fact] = {}
    for f in facts:
        held = out.get(f.key)
        if held is None or f.position > held.position:
            out[f.key] = f
    return out


def fold(events: Iterable[tuple[Event, Position]]) -> dict[FactKey, Fact]:
    """A subject's state from its events: what the projection holds after applying them."""
    return latest(f for event, pos in events for f in facts_for(event, pos))


def covering(state: SubjectState, kind: str, a: str, b: str) -> Fact | None:
    """The latest fact of `kind` whose scope covers (a, b): exact, or "*" on either side."""
    best: Fact | None = None
    for key in ((kind, a, b), (kind, a, ALL), (kind, ALL, b), (kind, ALL, ALL)):
        f = state.get(key)
        if f is not None and (best is None or f.position > best.position):
            best = f
    return best
