"""A subject's direct-marketing summary for the state feed: a pure function of its state.

One entry per direct-marketing purpose of the catalogue and each of its channels, each the
answer of the decision rules, plus `until`: when an allowed entry stops being allowed by the
clock alone, so a sending system's cache can stop in time without waiting for a new record.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from projections.outdating import NO_NOTICES, Notices
from projections.state import (
    ALL,
    CHANNEL_IDENTIFIERS,
    ERASURE,
    RELATIONSHIP,
    SUPPRESSION,
    Fact,
    SubjectState,
    covering,
)
from schemas import events as ev
from services.rules.catalogue import Catalogue, Purpose
from services.rules.decisions import Decision, decide

#: the relationship bases that carry a purpose of each basis (as in services/rules/decisions.py)
_RELATIONSHIP_BASES = {
    "contract": ("contract",),
    "legitimate_interest": ("contract", "legitimate_interest"),
}


@dataclass(frozen=True, slots=True)
class Entry:
    purpose: str
    channel: str
    allowed: bool
    reason: str
    until: datetime | None

    def as_record(self) -> dict[str, Any]:
        return {
            "purpose": self.purpose,
            "channel": self.channel,
            "allowed": self.allowed,
            "reason": self.reason,
            "until": self.until,
        }


def allowed_until(
    state: SubjectState,
    purpose: Purpose,
    decision: Decision,
    now: datetime,
    notices: Notices = NO_NOTICES,
) -> datetime | None:
    """When an allowing decision ends with no new event: the grant's `expires_at` or the
    `effective_from` of a published material notice that will outdate it, whichever comes
    first, or the latest end of the active relationships that carry the purpose. None when
    nothing ends it or when it does not allow."""
    if not decision.allowed:
        return None
    if decision.reason == "consent_given":
        grant = decision.decided_by
        if grant is None:
            return None
        change = (
            notices.next_outdating(purpose.id, grant, now)
            if purpose.reconsent_on_material_change
            else None
        )
        stops = [t for t in (grant.until, change.effective_from if change else None) if t]
        return min(stops, default=None)
    if decision.reason not in _RELATIONSHIP_BASES:
        return None
    ends: list[datetime] = []
    for basis in _RELATIONSHIP_BASES[purpose.basis]:
        f = covering(state, RELATIONSHIP, basis, purpose.id)
        if f is None or f.event_type != ev.RELATIONSHIP_RECORDED:
            continue
        if f.until is None:
            return None
        if f.until > now:
            ends.append(f.until)
    return max(ends, default=None)


def is_erased(state: SubjectState) -> bool:
    """An erased subject is published as a tombstone (a null value), not as entries: every
    entry would deny (`erased`), and a compacted topic then drops the subject altogether."""
    return (ERASURE, ALL, ALL) in state


def entries(
    state: SubjectState, catalogue: Catalogue, now: datetime, notices: Notices = NO_NOTICES
) -> list[Entry]:
    """The decision for every direct-marketing purpose and channel, in catalogue order.

    The rules read a channel only as a scope of the facts that cover it (consents and
    direct-marketing objections, by `covering`) and as the identifier type whose suppression
    stops it. Channels of one purpose that no fact of the state names as its scope and that
    meet the same suppression (or none) therefore get the same answer, and the rules run once
    for all of them: the feed summarises every changed subject, and most states name one or
    two channels. tests/unit/services/rules/test_state_summary.py checks every entry against
    `decide`."""
    named = {f.scope_b for f in state.values()}
    out = []
    for purpose in catalogue.marketing_purposes():
        alike: dict[Fact | None, tuple[bool, str, datetime | None]] = {}
        for channel in purpose.channels:
            kind = CHANNEL_IDENTIFIERS.get(channel)
            suppression = state.get((SUPPRESSION, kind, ALL)) if kind else None
            answer = None if channel in named else alike.get(suppression)
            if answer is None:
                d = decide(state, purpose, channel, now, notices)
                answer = (d.allowed, d.reason, allowed_until(state, purpose, d, now, notices))
                if channel not in named:
                    alike[suppression] = answer
            out.append(Entry(purpose.id, channel, *answer))
    return out


def subject_state_record(
    subject_id: str,
    state: SubjectState,
    catalogue: Catalogue,
    now: datetime,
    *,
    partition: int,
    next_offset: int,
    notices: Notices = NO_NOTICES,
) -> dict[str, Any]:
    """The state-topic record of one subject (schemas/avro/feeds/SubjectState.v1.avsc)."""
    return {
        "subject_id": subject_id,
        "computed_at": now,
        "source": {"partition": partition, "next_offset": next_offset},
        "entries": [e.as_record() for e in entries(state, catalogue, now, notices)],
    }
