"""As-of decisions: the fold of the events recorded by an instant, in log order, late events
included, decided by the same rules as the live answer."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import datetime, timedelta
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from projections.as_of import (
    ProofPurged,
    PurgedProof,
    Suppression,
    held,
    known_at,
    suppression_facts,
)
from projections.outdating import Notice
from projections.state import ALL, ERASURE, SUPPRESSION, Fact, Position, fold
from schemas import events as ev
from schemas.events import Event
from services.rules.decisions import decide
from tests.properties import examples
from tests.unit.event_log import CATALOGUE, T0, Spec, event, grant, logs, withdraw

P = pytest.param
NEWSLETTER = CATALOGUE.purposes["newsletter"]


def t(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


#: one logged event: (spec, occurred minute, recorded minute); log order is list order
Logged = tuple[Spec, int, int]


def history(entries: list[Logged]) -> list[tuple[Event, Position]]:
    out = []
    for i, (spec, occurred, recorded) in enumerate(entries):
        e = replace(event(*spec, index=i), occurred_at=t(occurred), recorded_at=t(recorded))
        out.append((e, (1, 100 + i)))
    return out


def newsletter_at(entries: list[Logged], minute: int) -> tuple[str, list[int]]:
    """The newsletter/email decision as of `minute`: its reason and evidence (log indexes)."""
    events = history(entries)
    known = known_at(events, t(minute))
    d = decide(known.state, NEWSLETTER, "email", t(minute))
    ids = {e.event_id: i for i, (e, _) in enumerate(events)}
    return d.reason, [ids[e] for e in d.evidence]


GRANT_THEN_WITHDRAW: list[Logged] = [
    (grant("newsletter", "email"), 10, 10),
    (withdraw("newsletter"), 30, 30),
]
#: the withdrawal is recorded at 30 but says it happened at 5, before the grant: late
LATE_WITHDRAWAL: list[Logged] = [
    (grant("newsletter", "email"), 10, 10),
    (withdraw("newsletter"), 5, 30),
]
#: a grant recorded at 30 that happened at 5, after a withdrawal recorded at 20
LATE_GRANT: list[Logged] = [
    (withdraw("newsletter"), 20, 20),
    (grant("newsletter", "email"), 5, 30),
]
#: recorded-at order differs from log order (a retry re-sent with its first recorded_at)
RESENT: list[Logged] = [
    (withdraw("newsletter"), 20, 20),
    (grant("newsletter", "email"), 10, 10),
]
EXPIRING: list[Logged] = [(grant("newsletter", "email", t(40)), 10, 10)]


@pytest.mark.parametrize(
    ("entries", "minute", "reason", "evidence"),
    [
        P([], 50, "no_consent", [], id="nothing-recorded"),
        P(GRANT_THEN_WITHDRAW, 9, "no_consent", [], id="before-the-grant"),
        P(GRANT_THEN_WITHDRAW, 10, "consent_given", [0], id="at-the-grant-inclusive"),
        P(GRANT_THEN_WITHDRAW, 29, "consent_given", [0], id="between"),
        P(GRANT_THEN_WITHDRAW, 30, "consent_withdrawn", [1], id="at-the-withdrawal"),
        P(GRANT_THEN_WITHDRAW, 99, "consent_withdrawn", [1], id="after"),
        P(LATE_WITHDRAWAL, 20, "consent_given", [0], id="late-event-unknown-before-recorded"),
        P(LATE_WITHDRAWAL, 30, "consent_withdrawn", [1], id="late-event-counts-once-recorded"),
        P(LATE_GRANT, 25, "consent_withdrawn", [0], id="late-grant-not-yet-known"),
        P(LATE_GRANT, 30, "consent_given", [1], id="late-grant-wins-by-log-order"),
        P(RESENT, 15, "consent_given", [1], id="resent-only-the-earlier-recorded"),
        P(RESENT, 20, "consent_given", [1], id="resent-both-log-order-decides"),
        P(EXPIRING, 39, "consent_given", [0], id="expiry-judged-by-at"),
        P(EXPIRING, 40, "consent_expired", [0], id="expired-at-at"),
    ],
)
def test_decision_as_of(
    entries: list[Logged], minute: int, reason: str, evidence: list[int]
) -> None:
    assert newsletter_at(entries, minute) == (reason, evidence)


@pytest.mark.parametrize(
    ("entries", "minute", "position", "count"),
    [
        P([], 50, None, 0, id="empty"),
        P(GRANT_THEN_WITHDRAW, 9, None, 0, id="none-yet"),
        P(GRANT_THEN_WITHDRAW, 10, (1, 100), 1, id="first"),
        P(GRANT_THEN_WITHDRAW, 30, (1, 101), 2, id="both"),
        P(RESENT, 15, (1, 101), 1, id="later-in-log-recorded-earlier"),
        P(RESENT, 20, (1, 101), 2, id="last-in-log-order"),
    ],
)
def test_position_is_the_last_event_folded_in_log_order(
    entries: list[Logged], minute: int, position: Position | None, count: int
) -> None:
    known = known_at(history(entries), t(minute))
    assert (known.position, known.events, known.at) == (position, count, t(minute))


@settings(max_examples=examples(200), deadline=None, database=None)
@given(logs, st.integers(0, 12), st.randoms(use_true_random=False))
def test_as_of_is_the_fold_of_the_events_recorded_by_then(
    events: list[tuple[Event, Position]], minute: int, shuffle: random.Random
) -> None:
    """Whatever order the rows come in, the answer is the live fold of the recorded prefix;
    once everything is recorded it is the live state itself."""
    at = t(minute)
    shuffled = list(events)
    shuffle.shuffle(shuffled)
    expected = fold([(e, p) for e, p in events if e.recorded_at <= at])
    assert known_at(shuffled, at).state == expected
    assert known_at(shuffled, t(60)).state == fold(events)


def notice(effective: int, published: int) -> Notice:
    return Notice(
        version=f"v-{effective}-{published}",
        effective_from=t(effective),
        text_sha256="0" * 64,
        url="https://example.com/privacy",
        material=True,
        purposes=("newsletter",),
        published_at=t(published),
    )


@pytest.mark.parametrize(
    ("published", "minute", "reason"),
    [
        P([notice(20, 25)], 22, "consent_given", id="in-effect-but-not-yet-published"),
        P([notice(20, 25)], 25, "consent_outdated", id="known-once-published"),
        P([notice(20, 5)], 19, "consent_given", id="published-not-yet-in-effect"),
        P([notice(20, 5)], 20, "consent_outdated", id="in-effect"),
        P([notice(5, 5)], 30, "consent_given", id="before-the-grant"),
    ],
)
def test_notices_count_from_their_publication(
    published: list[Notice], minute: int, reason: str
) -> None:
    """A material change outdates a grant as of `at` only if the ledger knew of the notice."""
    known = known_at(history([(grant("newsletter", "email"), 10, 10)]), t(minute), published)
    decided = decide(known.state, NEWSLETTER, "email", t(minute), known.notices)
    assert decided.reason == reason


INDEX = b"\x07" * 32


def link_email() -> Spec:
    return ev.IDENTIFIER_LINKED, {
        "identifier_type": "email",
        "blind_index": INDEX,
        "ciphertext": b"c",
    }


def unlink_email() -> Spec:
    return ev.IDENTIFIER_UNLINKED, {"identifier_type": "email", "blind_index": INDEX}


#: another subject who held the address was erased at 19, recorded at 20
LISTED = [Suppression(("email", INDEX), t(19), t(20))]
HOLDS: list[Logged] = [(grant("newsletter", "email"), 5, 5), (link_email(), 10, 10)]


@pytest.mark.parametrize(
    ("entries", "minute", "reason", "evidence"),
    [
        P(HOLDS, 19, "consent_given", [0], id="before-the-erasure-was-recorded"),
        P(HOLDS, 20, "suppressed", [1], id="once-recorded"),
        P([*HOLDS, (unlink_email(), 25, 25)], 24, "suppressed", [1], id="still-held"),
        P([*HOLDS, (unlink_email(), 25, 25)], 25, "consent_given", [0], id="no-longer-held"),
        P([(grant("newsletter", "email"), 5, 5), (link_email(), 30, 30)], 29, "consent_given",
          [0], id="not-yet-held"),
        P([(grant("newsletter", "email"), 5, 5), (link_email(), 30, 30)], 30, "suppressed",
          [1], id="held-after-the-erasure"),
    ],
)  # fmt: skip
def test_suppression_counts_while_held_and_once_known(
    entries: list[Logged], minute: int, reason: str, evidence: list[int]
) -> None:
    events = history(entries)
    known = known_at(events, t(minute), suppressed=LISTED)
    d = decide(known.state, NEWSLETTER, "email", t(minute))
    ids = {e.event_id: i for i, (e, _) in enumerate(events)}
    assert (d.reason, [ids[e] for e in d.evidence]) == (reason, evidence)


def test_suppression_fact_is_the_one_the_projector_sets() -> None:
    """Same shape as projections/erasure.py SET_FACTS: the latest link, at the later time."""
    events = history([(link_email(), 10, 10)])
    (fact,) = suppression_facts(held(events), LISTED)
    link, position = events[0]
    assert (fact.kind, fact.scope_a, fact.scope_b, fact.event_type) == (
        SUPPRESSION,
        "email",
        ALL,
        ev.IDENTIFIER_LINKED,
    )
    assert (fact.event_id, fact.position, fact.occurred_at) == (link.event_id, position, t(19))


ERASED = Fact(ERASURE, ALL, ALL, ev.SUBJECT_ERASED, UUID(int=99), (1, 50), t(40))
PURGED = PurgedProof(erased_at=t(40), purged_at=t(90), erasure=ERASED)


def test_before_a_purged_erasure_nothing_can_be_said() -> None:
    with pytest.raises(ProofPurged) as raised:
        known_at([], t(39), purged=PURGED)
    assert raised.value.proof == PURGED


@pytest.mark.parametrize("minute", [40, 95])
def test_from_a_purged_erasure_on_the_erasure_fact_decides(minute: int) -> None:
    after = history([(withdraw("newsletter"), 60, 60)])  # recorded after the erasure, kept
    known = known_at(after, t(minute), purged=PURGED)
    assert known.state[ERASED.key] == ERASED
    decided = decide(known.state, NEWSLETTER, "email", t(minute))
    assert (decided.reason, decided.evidence) == ("erased", (ERASED.event_id,))
