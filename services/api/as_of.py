"""`at=` on the decision and consent-state queries: answer as the ledger would have then.

The answer is a pure fold of the subject's journal rows recorded by `at` (projections/as_of.py)
through the same `decide` the live answer uses, with `at` as the clock. It carries `at` and
`as_of_position` (the last event folded) instead of a token.
The same concept as projections/as_of.py, on the HTTP side.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from projections import as_of
from projections.as_of import KnownAt, ProofPurged
from schemas.events import rfc3339
from services.bootstrap import Ledger
from services.http.app_state import purpose_history_of
from services.http.body import Fields
from services.http.problems import ProblemError, field_error
from services.rules.catalogue import Catalogue


def catalogue_at(ledger: Ledger, at: datetime) -> Catalogue:
    """The purpose catalogue in force at `at`: what an as-of answer decides with."""
    return purpose_history_of(ledger).at(at)


def at_param(f: Fields) -> datetime | None:
    """`at`: an RFC 3339 instant with an offset, not after the ledger's clock (what the ledger
    will know later is not known yet, and an answer about it could still change)."""
    at = f.instant("at")
    if at is not None and at > datetime.now(UTC):
        f.error("at", "is in the future; give an instant up to now")
        return None
    return at


async def known(ledger: Ledger, subject_id: str, at: datetime) -> KnownAt:
    """The subject as of `at`; 410 when `at` is before an erasure whose proof was purged."""
    try:
        return await as_of.load(ledger.pool, ledger.codec, subject_id, at)
    except ProofPurged as exc:
        erased, purged = rfc3339(exc.proof.erased_at), rfc3339(exc.proof.purged_at)
        raise ProblemError(
            410,
            "Records purged",
            f"the subject was erased at {erased} and its records were purged at {purged}"
            " when the proof period ended; what the ledger knew before the erasure is gone",
            errors=[field_error("at", f"must be {erased} or later for this subject")],
            kind="records-purged",
        ) from None


def stamp(known: KnownAt | None, at: datetime) -> dict[str, Any]:
    """`at` and the position of the latest event the answer folded (null when none)."""
    position = known.position if known is not None else None
    return {
        "at": rfc3339(at),
        "as_of_position": (
            {"partition": position[0], "offset": position[1]} if position is not None else None
        ),
    }
