"""A subject's *fact pattern* for a batch question (purpose, channel, now), pure: `pattern_of`
encodes a subject's facts, `facts_of` decodes a pattern back into facts `decide` treats alike.

Design: docs/developers/design/reads.md
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final
from uuid import UUID

from projections.outdating import NO_NOTICES, Notices
from projections.state import (
    ALL,
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
    FactKey,
)
from schemas.events import CONSENT_GRANTED

FIELD_SEP: Final = "\x1f"
FACT_SEP: Final = "\x1e"
#: separates subject ids sent to and received from PostgreSQL (never in a subject id)
ID_SEP: Final = "\n"
_PAST, _FUTURE = "past", "future"
#: a grant judged by an instant before the purpose's cutoff: a material change outdated it
STALE: Final = "stale"
#: a stand-in for a stale grant's time: earlier than any cutoff
_LONG_AGO: Final = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Relevance:
    """The scopes of each kind of fact that `services.rules.decisions.decide` can read for one
    (purpose, channel) question; an empty tuple means the rules never read that kind."""

    restriction_b: tuple[str, ...]
    dm_objection_b: tuple[str, ...]
    processing_a: tuple[str, ...]
    consent_a: tuple[str, ...]
    consent_b: tuple[str, ...]
    relationship_b: tuple[str, ...]
    erasure_a: tuple[str, ...] = ()
    suppression_a: tuple[str, ...] = ()

    @classmethod
    def of(cls, purpose_id: str, basis: str, direct_marketing: bool, channel: str) -> Relevance:
        bound = basis != "legal_obligation"
        chosen = basis in ("consent", "legitimate_interest")
        related = basis in ("contract", "legitimate_interest")
        identifier = CHANNEL_IDENTIFIERS.get(channel)
        return cls(
            restriction_b=(purpose_id, ALL) if bound else (),
            dm_objection_b=(channel, ALL) if direct_marketing else (),
            processing_a=(purpose_id,) if bound else (),
            consent_a=(purpose_id, ALL) if chosen else (),
            consent_b=(channel, ALL) if chosen else (),
            relationship_b=(purpose_id, ALL) if related else (),
            erasure_a=(ALL,) if bound else (),
            suppression_a=(identifier,) if direct_marketing and identifier else (),
        )

    def admits(self, fact: Fact) -> bool:
        """The filter of batch_snapshot.PATTERNS, in Python."""
        if fact.kind == RESTRICTION:
            return fact.scope_b in self.restriction_b
        if fact.kind == DM_OBJECTION:
            return fact.scope_b in self.dm_objection_b
        if fact.kind == PROCESSING_OBJECTION:
            return fact.scope_a in self.processing_a
        if fact.kind in (CONSENT, CONSENT_REQUEST):  # a sign-up is scoped like a consent
            return fact.scope_a in self.consent_a and fact.scope_b in self.consent_b
        if fact.kind == RELATIONSHIP:
            return fact.scope_b in self.relationship_b
        if fact.kind == ERASURE:
            return fact.scope_a in self.erasure_a
        if fact.kind == SUPPRESSION:
            return fact.scope_a in self.suppression_a
        return False


def pattern_of(
    facts: Iterable[Fact],
    relevance: Relevance,
    now: datetime,
    notices: Notices = NO_NOTICES,
    cutoff: datetime | None = None,
) -> str:
    """A subject's fact pattern for the question, exactly as batch_snapshot.PATTERNS computes
    it; `cutoff` is `notices.cutoff(purpose, now)` when the purpose asks for re-consent, else
    None."""
    kept = sorted((f for f in facts if relevance.admits(f)), key=lambda f: f.position)

    def stale(f: Fact) -> str:
        grant = f.kind == CONSENT and f.event_type == CONSENT_GRANTED
        return STALE if grant and cutoff and notices.reference(f) < cutoff else ""

    return FACT_SEP.join(
        FIELD_SEP.join(
            (
                f.kind,
                f.scope_a,
                f.scope_b,
                f.event_type,
                f.outcome or "",
                "" if f.until is None else _PAST if f.until <= now else _FUTURE,
                stale(f),
            )
        )
        for f in kept
    )


def facts_of(pattern: str, now: datetime) -> dict[FactKey, Fact]:
    """Facts that `decide` treats exactly like the subject's own: the same kinds, scopes,
    types, outcomes, order, expiry relative to `now` and staleness (ids and times are
    placeholders; a stale grant has no notice version and a time before any cutoff, a current
    one the time `now`, so `decide` with the snapshot's notices judges them alike)."""
    out: dict[FactKey, Fact] = {}
    if not pattern:
        return out
    for index, code in enumerate(pattern.split(FACT_SEP)):
        kind, a, b, event_type, outcome, until, stale = code.split(FIELD_SEP)
        fact = Fact(
            kind,
            a,
            b,
            event_type,
            UUID(int=index + 1),
            (0, index),
            _LONG_AGO if stale else now,
            until=None if not until else now if until == _PAST else now + timedelta(days=1),
            outcome=outcome or None,
        )
        out[fact.key] = fact
    return out
