"""Small builders for a subject's event log, shared by the fold and decision tests.

A spec is (event type, data); `log` turns specs into events at increasing offsets of one
partition, with event ids 1, 2, 3... so a test can name its evidence by list index.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from hypothesis import strategies as st

from projections.state import Position
from schemas import events as ev
from schemas.events import CHANNELS, Event
from services.rules import catalogue as cat
from services.rules.catalogue_history import CatalogueHistory

CATALOGUE = cat.load_catalogue(Path(cat.__file__).parent / "purposes.toml")
#: the file's catalogue as the one version of each purpose, in force since the epoch
HISTORY = CatalogueHistory.from_catalogue(CATALOGUE)
PURPOSE_IDS = CATALOGUE.ids
NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
T0 = NOW - timedelta(days=30)

Spec = tuple[str, dict[str, Any]]


def event(type_: str, data: dict[str, Any], index: int = 0) -> Event:
    return Event(
        type=type_,
        event_id=event_id(index),
        subject_id="sub-1",
        occurred_at=T0 + timedelta(minutes=index),
        recorded_at=T0 + timedelta(minutes=index),
        data=data,
    )


def event_id(index: int) -> UUID:
    return UUID(int=index + 1)


def log(specs: list[Spec]) -> list[tuple[Event, Position]]:
    """The specs in log order: offsets 10, 20, ... on partition 3."""
    return [(event(t, d, i), (3, 10 * (i + 1))) for i, (t, d) in enumerate(specs)]


def spec_of(event: Event) -> Spec:
    """The spec an event of `log` was made from."""
    return event.type, dict(event.data)


def grant(purpose: str, channel: str | None = None, expires: datetime | None = None) -> Spec:
    return ev.CONSENT_GRANTED, ev.grant_data(purpose, channel, expires)


def request(purpose: str, channel: str, expires: datetime = NOW + timedelta(days=7)) -> Spec:
    """A sign-up waiting for its confirmation (double opt-in)."""
    return ev.CONSENT_REQUESTED, {
        "purpose": purpose,
        "channel": channel,
        "expires_at": expires,
        "language": None,
    }


def withdraw(purpose: str | None = None, channel: str | None = None) -> Spec:
    return ev.CONSENT_WITHDRAWN, {"purpose": purpose, "channel": channel, "reason": None}


def dm_object(channel: str | None = None) -> Spec:
    return ev.DIRECT_MARKETING_OBJECTED, {"channel": channel}


def dm_lift(channel: str | None = None) -> Spec:
    return ev.DIRECT_MARKETING_OBJECTION_LIFTED, {"channel": channel, "evidence": "asked"}


def object_processing(purpose: str) -> Spec:
    return ev.PROCESSING_OBJECTED, {"purpose": purpose}


def resolve(purpose: str, outcome: str) -> Spec:
    return ev.PROCESSING_OBJECTION_RESOLVED, {
        "purpose": purpose,
        "outcome": outcome,
        "evidence": None,
    }


def restrict(ground: str, purposes: list[str] | None = None) -> Spec:
    return ev.PROCESSING_RESTRICTED, {"ground": ground, "purposes": purposes or []}


def lift_restriction(ground: str | None = None, purposes: list[str] | None = None) -> Spec:
    data = {"ground": ground, "purposes": purposes or [], "evidence": None}
    return ev.RESTRICTION_LIFTED, data


def relationship(
    basis: str, purposes: list[str] | None = None, until: datetime | None = None
) -> Spec:
    data = {"basis": basis, "purposes": purposes or [], "valid_until": until}
    return ev.RELATIONSHIP_RECORDED, data


def end_relationship(basis: str | None = None, purposes: list[str] | None = None) -> Spec:
    data = {"basis": basis, "purposes": purposes or [], "evidence": None}
    return ev.RELATIONSHIP_ENDED, data


def erase(ground: str = "consent_withdrawn") -> Spec:
    return ev.SUBJECT_ERASED, {"ground": ground, "request_id": None}


# Hypothesis: any event the API can append (so no processing objection or resolution for a
# purpose under a legal obligation: the commands refuse those).
_purpose = st.sampled_from(PURPOSE_IDS)
_objectable = st.sampled_from([p for p in PURPOSE_IDS if p != "legal_obligation"])
_opt_purpose = st.none() | _purpose
_channel = st.none() | st.sampled_from(CHANNELS)
_purposes = st.lists(_purpose, max_size=3, unique=True)
_moment = st.none() | st.sampled_from(
    [NOW - timedelta(days=1), NOW, NOW + timedelta(microseconds=1), NOW + timedelta(days=1)]
)
_ground = st.sampled_from(ev.RESTRICTION_GROUNDS)
_basis = st.sampled_from(ev.RELATIONSHIP_BASES)

specs: st.SearchStrategy[Spec] = st.one_of(
    st.builds(grant, _purpose, _channel, _moment),
    st.builds(withdraw, _opt_purpose, _channel),
    st.builds(dm_object, _channel),
    st.builds(dm_lift, _channel),
    st.builds(object_processing, _objectable),
    st.builds(resolve, _objectable, st.sampled_from(ev.RESOLUTION_OUTCOMES)),
    st.builds(restrict, _ground, _purposes),
    st.builds(lift_restriction, st.none() | _ground, _purposes),
    st.builds(relationship, _basis, _purposes, _moment),
    st.builds(end_relationship, st.none() | _basis, _purposes),
    st.builds(request, _purpose, st.sampled_from(CHANNELS), _moment.filter(bool)),
)
logs = st.lists(specs, max_size=12).map(log)
#: logs that may also erase the subject (the fold's and the decisions' erasure rule)
erasable_logs = st.lists(specs | st.builds(erase), max_size=12).map(log)
