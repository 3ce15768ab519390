"""Whether a subject belongs on a channel's do-not-contact list: a pure function of its state.

A suppression is an explicit choice of the subject that stops direct marketing on a channel,
whichever purpose a sending system has in mind:

- `objected_direct_marketing`: the direct-marketing objection covering the channel is in force
  (the latest of the subject's objection events scoped to that channel or to every channel is
  a `DirectMarketingObjected`, not a lift). It stops every direct-marketing purpose.
- `withdrawn_all`: a withdrawal of every purpose covers the channel, and for every
  direct-marketing purpose on consent or legitimate interest that offers the channel, the
  latest consent event covering (purpose, channel) is a withdrawal: no such purpose was
  granted again since (a grant later withdrawn again does not count).

Defaults (no consent yet), restrictions and processing objections are not suppressions: they
are answered per purpose by the decision rules.
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
