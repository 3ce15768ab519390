"""The as-of decision as `GET /v1/decision?at=` makes it: the purpose's version in force at the
instant (or its last definition, when it was retired by then) and the subject's state then.
One function, so the property test checks the composition the API runs, not a copy of it.

Design: docs/developers/design/purpose-catalogue.md
"""

from __future__ import annotations

from datetime import datetime

from projections.outdating import NO_NOTICES, Notices
from projections.state import SubjectState
from services.rules.catalogue import Purpose
from services.rules.catalogue_history import CatalogueHistory
from services.rules.decisions import Decision, decide, retired_purpose, unknown_subject


def purposes_as_of(history: CatalogueHistory, at: datetime) -> dict[str, Purpose]:
    """What a decision as of `at` may name: each purpose in force then, and each retired by
    then with its last definition (answered `not_in_catalogue`)."""
    return {**history.at(at).purposes, **history.retired_at(at)}


def decide_as_of(
    history: CatalogueHistory,
    purpose_id: str,
    channel: str,
    at: datetime,
    state: SubjectState | None,
    notices: Notices = NO_NOTICES,
) -> Decision | None:
    """The answer as of `at` for a subject whose state then is `state` (None: no subject
    found); None when the purpose, or the channel in its version then, was not in force (the
    API's 422). A purpose retired by `at` is denied whatever the subject's history."""
    purpose = purposes_as_of(history, at).get(purpose_id)
    if purpose is None or channel not in purpose.channels:
        return None
    if purpose_id in history.retired_at(at):
        return retired_purpose(purpose)
    if state is None:
        return unknown_subject(purpose)
    return decide(state, purpose, channel, at, notices)
