"""What an erased subject may still have recorded, and the refusal of the rest.

After an erasure the ledger still takes what stops processing (withdrawals, objections,
restrictions, upheld objections, ended relationships, unlinks), so a later request of the
person is never lost. It refuses, with a 409, what would let processing start again: a grant,
a lifted objection or restriction, a processing objection cleared, a new relationship, a new
identifier. Decisions deny such a subject anyway (`erased`); the refusal keeps the log from
saying otherwise and keeps a new identifier from being encrypted under a new key.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from schemas import events as ev
from schemas.events import Event
from services.bootstrap import Ledger
from services.http.problems import ProblemError

#: event types that can let processing start again, whatever their fields
_REOPENING: Final = frozenset(
    {
        ev.CONSENT_GRANTED,
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


def erased_problem() -> ProblemError:
    return ProblemError(
        409,
        "Subject erased",
        "the subject was erased (GDPR Art. 17): the ledger records withdrawals, objections,"
        " restrictions and other events that stop processing for it, but nothing that would"
        " let processing start again",
        kind="subject-erased",
    )


async def refuse_if_erased(ledger: Ledger, subject_id: str, events: Iterable[Event]) -> None:
    """Raise the 409 problem when an event would reopen processing of an erased subject."""
    if any(reopens(e.type, dict(e.data)) for e in events) and await ledger.erased.get(subject_id):
        raise erased_problem()
