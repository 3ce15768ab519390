"""Whether a subject belongs on a channel's do-not-contact list: a pure function of its state.

Design: docs/developers/design/suppression.md
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from projections.state import (
    ALL,
    CONSENT,
    DM_OBJECTION,
    Fact,
    SubjectState,
    covering,
)
from projections.state import CHANNEL_IDENTIFIERS as CHANNEL_IDENTIFIERS
from schemas import events as ev
from services.rules.catalogue import Catalogue

#: `erased` entries are address-level, not a subject's state: the erasure of a subject left
#: them (projections/erasure.py), and they outlive it
REASONS: Final = ("objected_direct_marketing", "withdrawn_all", "erased")


@dataclass(frozen=True, slots=True)
class Suppression:
    reason: str
    #: the event the suppression rests on (the latest, for `withdrawn_all`)
    fact: Fact


def withdrawable_purposes(catalogue: Catalogue, channel: str) -> list[str]:
    """Direct-marketing purposes offering the channel that a consent withdrawal stops."""
    return [
        p.id
        for p in catalogue.purposes.values()
        if p.direct_marketing
        and p.basis in ("consent", "legitimate_interest")
        and channel in p.channels
    ]


def suppression(state: SubjectState, channel: str, purposes: Iterable[str]) -> Suppression | None:
    """Why the subject must not get direct marketing on `channel`, or None.

    `purposes` are the `withdrawable_purposes` of the catalogue for the channel.
    """
    objection = covering(state, DM_OBJECTION, ALL, channel)
    if objection is not None and objection.event_type == ev.DIRECT_MARKETING_OBJECTED:
        return Suppression("objected_direct_marketing", objection)
    everything = covering(state, CONSENT, ALL, channel)
    if everything is None or everything.event_type != ev.CONSENT_WITHDRAWN:
        return None
    latest = everything
    for purpose in purposes:
        choice = covering(state, CONSENT, purpose, channel)
        if choice is None or choice.event_type != ev.CONSENT_WITHDRAWN:
            return None
        if choice.position > latest.position:
            latest = choice
    return Suppression("withdrawn_all", latest)
