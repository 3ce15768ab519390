"""Who is in a campaign's audience: every subject allowed now for a purpose and channel, decided
once per distinct fact pattern with the batch rules, and the count of everyone left out.

Pure; the stream that feeds it is services/api/audiences.py.

Design: docs/developers/design/audiences.md
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from projections.fact_patterns import facts_of
from projections.outdating import NO_NOTICES, Notices
from services.rules.catalogue import Purpose
from services.rules.decisions import Decision, decide

#: an allowed subject with no linked address for the channel, when addresses are asked for:
#: left out (nothing to send to) and counted beside the denial reasons
NO_ADDRESS = "no_address"


@dataclass(slots=True)
class AudienceVerdicts:
    """Pattern -> decision for one (purpose, channel, now), deciding each pattern once."""

    purpose: Purpose
    channel: str
    now: datetime
    notices: Notices = NO_NOTICES
    decided: dict[str, Decision] = field(default_factory=dict)

    def of(self, pattern: str) -> Decision:
        found = self.decided.get(pattern)
        if found is None:
            facts = facts_of(pattern, self.now)
            found = decide(facts, self.purpose, self.channel, self.now, self.notices)
            self.decided[pattern] = found
        return found


@dataclass(slots=True)
class AudienceTally:
    """How many subjects were considered, allowed and left out (by reason)."""

    allowed: int = 0
    left_out: Counter[str] = field(default_factory=Counter)

    @property
    def considered(self) -> int:
        return self.allowed + self.left_out.total()

    def by_reason(self) -> dict[str, int]:
        return dict(sorted(self.left_out.items()))


def allowed_of(
    rows: Iterable[tuple[str, str]], verdicts: AudienceVerdicts, tally: AudienceTally
) -> list[str]:
    """The subject ids of (subject id, pattern) rows that are allowed, in the order given;
    every row is counted in `tally`."""
    allowed: list[str] = []
    keep, count, of = allowed.append, tally.left_out, verdicts.of
    for subject_id, pattern in rows:
        decision = of(pattern)
        if decision.allowed:
            keep(subject_id)
        else:
            count[decision.reason] += 1
    tally.allowed += len(allowed)
    return allowed
