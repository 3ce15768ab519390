"""Deciding a batch of recipients against one snapshot: pure, and cheap per recipient.

`decide()` runs once per distinct fact pattern (projections/fact_patterns.py) plus once for
"no relevant fact", never once per recipient; the per-recipient work is a few dictionary
look-ups. Recipients are answered in the order given, each distinct string once.
The same concept as services/api/batch.py, as a pure rule.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from projections.fact_patterns import Relevance, facts_of
from projections.outdating import NO_NOTICES, Notices
from services.rules.catalogue import Purpose
from services.rules.decisions import Decision, decide

#: the most recipients one call may name
MAX_RECIPIENTS = 100_000

#: reasons a batch adds to the decision reasons
UNKNOWN_SUBJECT = "unknown_subject"
INVALID_ADDRESS = "invalid_address"


def relevance(purpose: Purpose, channel: str) -> Relevance:
    return Relevance.of(purpose.id, purpose.basis, purpose.direct_marketing, channel)


def verdicts(
    groups: Iterable[tuple[str, Sequence[str]]],
    purpose: Purpose,
    channel: str,
    now: datetime,
    notices: Notices = NO_NOTICES,
) -> dict[str, Decision]:
    """Subject id -> decision, deciding each pattern once (with the snapshot's notices)."""
    out: dict[str, Decision] = {}
    for pattern, subjects in groups:
        decision = decide(facts_of(pattern, now), purpose, channel, now, notices)
        out.update(dict.fromkeys(subjects, decision))
    return out


def reconsent_purpose(purpose: Purpose) -> str | None:
    """The purpose id the snapshot marks stale grants for, when the purpose asks for
    re-consent after a material notice change."""
    return purpose.id if purpose.reconsent_on_material_change else None


@dataclass(slots=True)
class BatchResult:
    """The answer for each distinct recipient, in the order given."""

    allowed: list[str] = field(default_factory=list)
    #: (recipient as given, reason)
    denied: list[tuple[str, str]] = field(default_factory=list)

    @property
    def requested(self) -> int:
        return len(self.allowed) + len(self.denied)

    def denied_by_reason(self) -> dict[str, int]:
        return dict(sorted(Counter(reason for _, reason in self.denied).items()))


def evaluate_subjects(
    subjects: Iterable[str], decided: Mapping[str, Decision], default: Decision
) -> BatchResult:
    """`default` answers the subjects in no group: those with no relevant fact."""
    result = BatchResult()
    allowed, denied, get = result.allowed.append, result.denied.append, decided.get
    for subject in dict.fromkeys(subjects):
        decision = get(subject, default)
        if decision.allowed:
            allowed(subject)
        else:
            denied((subject, decision.reason))
    return result


def evaluate_emails(
    emails: Iterable[str],
    index_of: Mapping[str, bytes],
    linked: Mapping[bytes, str],
    decided: Mapping[str, Decision],
    default: Decision,
) -> BatchResult:
    """Each address as given: `invalid_address` when it has no blind index (it did not
    normalise), `unknown_subject` when no subject is linked to it, else its subject's answer."""
    result = BatchResult()
    allowed, denied, get = result.allowed.append, result.denied.append, decided.get
    for email in dict.fromkeys(emails):
        index = index_of.get(email)
        if index is None:
            denied((email, INVALID_ADDRESS))
            continue
        subject = linked.get(index)
        if subject is None:
            denied((email, UNKNOWN_SUBJECT))
            continue
        decision = get(subject, default)
        if decision.allowed:
            allowed(email)
        else:
            denied((email, decision.reason))
    return result
