"""What an erased subject may still have recorded.

After an erasure the ledger still takes what stops processing (withdrawals, objections,
restrictions, upheld objections, ended relationships, unlinks), so a later request of the
person is never lost. It refuses (services/ledger/append.py, a 409 over HTTP) what would let
processing start again: a grant or a sign-up, a lifted objection or restriction, a processing
objection cleared, a new relationship, a new identifier. Decisions deny such a subject anyway
(`erased`); the refusal keeps the log from saying otherwise and keeps a new identifier from
being encrypted under a new key.
One concept, three sides: services/api/erasure.py, projections/erasure.py.
"""

from __future__ import annotations

from typing import Final

from schemas import events as ev

#: event types that can let processing start again, whatever their fields
_REOPENING: Final = frozenset(
    {
        ev.CONSENT_GRANTED,
        ev.CONSENT_REQUESTED,
        ev.DIRECT_MARKETING_OBJECTION_LIFTED,
        ev.RESTRICTION_LIFTED,
        ev.RELATIONSHIP_RECORDED,
        ev.IDENTIFIER_LINKED,
    }
)


def reopens(event_type: str, data: dict[str, object] | None = None) -> bool:
    """Whether an event of this type (and data) could let the subject's data be processed
    again; a processing-objection resolution does unless it upholds the objection."""
    if event_type == ev.PROCESSING_OBJECTION_RESOLVED:
        return (data or {}).get("outcome") != "upheld"
    return event_type in _REOPENING
