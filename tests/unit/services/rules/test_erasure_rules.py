"""Erasure in the pure rules: decisions (`erased`, `suppressed`), the batch check's fact
patterns, the state feed's tombstone, what an erased subject may still record, and how long
its proof is kept."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from projections.state import ERASURE, SUPPRESSION, Fact, FactKey, Position, fold
from schemas import events as ev
from schemas.events import CHANNELS, Event
from services.proof.retention import proof_until, purposes_of
from services.rules.catalogue import Catalogue, CatalogueError, Purpose, load_catalogue
from services.rules.decisions import Decision, decide
from services.rules.erasure import reopens
from services.rules.state_summary import entries, is_erased
from tests.unit.event_log import (
    CATALOGUE,
    NOW,
    PURPOSE_IDS,
    Spec,
    dm_lift,
    dm_object,
    erasable_logs,
    erase,
    event_id,
    grant,
    log,
    logs,
    relationship,
    restrict,
    withdraw,
)
from tests.unit.services.rules.test_batch_decisions import answers, batch

NL, MO, RS, LO, CR = (
    "newsletter",
    "marketing_own",
    "research",
    "legal_obligation",
    "customer_relationship",
)


def purpose(pid: str) -> Purpose:
    found = CATALOGUE.get(pid)
    assert found is not None
    return found


def suppressed_at(pairs: list[tuple[Event, Position]], index: int, kind: str = "email") -> Fact:
    """The fact the projector sets when the subject links an identifier an erased subject
    held: at the position of the log's `index`-th event (standing in for its IdentifierLinked)."""
    event, position = pairs[index]
    return Fact(SUPPRESSION, kind, "*", ev.IDENTIFIER_LINKED, event.event_id, position, NOW)


def state_of(specs: list[Spec], suppressions: Mapping[int, str]) -> dict[FactKey, Fact]:
    pairs = log(specs)
    state = fold(pairs)
    for index, kind in suppressions.items():
        fact = suppressed_at(pairs, index, kind)
        state[fact.key] = fact
    return state


P = pytest.param
#: (specs, {index: identifier type suppressed at that event}, purpose, channel, allowed,
#: reason, evidence as log indexes)
SCENARIOS = [
    P([grant(NL), erase()], {}, NL, "email", False, "erased", (1,), id="erased-grant"),
    P([erase(), grant(NL)], {}, NL, "email", False, "erased", (0,), id="grant-after-erasure"),
    P([relationship("contract"), erase()], {}, CR, "post", False, "erased", (1,),
      id="erased-contract"),
    P([relationship("contract"), erase()], {}, RS, "web", False, "erased", (1,),
      id="erased-legitimate-interest"),
    P([erase()], {}, LO, "post", True, "legal_obligation", (), id="legal-obligation-after-erasure"),
    P([restrict("legal_claims"), erase()], {}, NL, "email", False, "erased", (1,),
      id="erasure-beats-restriction"),
    P([erase(), erase("objection")], {}, NL, "email", False, "erased", (1,),
      id="the-latest-erasure-is-evidence"),
    P([erase(), withdraw()], {}, MO, "sms", False, "erased", (0,), id="withdrawal-after-erasure"),
    # an identifier an erased subject held, linked again to this subject
    P([grant(NL)], {0: "email"}, NL, "email", False, "suppressed", (0,), id="suppressed-email"),
    P([grant(NL), grant(NL)], {0: "email"}, NL, "email", False, "suppressed", (0,),
      id="a-later-grant-does-not-clear"),
    P([grant("marketing_partners")], {0: "phone"}, "marketing_partners", "sms", False,
      "suppressed", (0,), id="suppressed-phone-stops-sms"),
    P([grant("marketing_partners")], {0: "phone"}, "marketing_partners", "email", True,
      "consent_given", (0,), id="suppressed-phone-leaves-email"),
    P([grant("marketing_partners")], {0: "email"}, "marketing_partners", "post", True,
      "consent_given", (0,), id="post-reaches-no-identifier"),
    P([relationship("legitimate_interest")], {0: "email"}, RS, "email", True,
      "legitimate_interest", (0,), id="not-direct-marketing"),
    P([grant(NL), dm_object()], {0: "email"}, NL, "email", False, "objected_direct_marketing",
      (1,), id="objection-beats-suppression"),
    P([dm_object(), grant(NL), dm_lift()], {1: "email"}, NL, "email", True, "consent_given",
      (1, 2), id="a-later-lift-clears"),
    P([dm_lift(), grant(NL)], {1: "email"}, NL, "email", False, "suppressed", (0, 1),
      id="an-earlier-lift-does-not"),
    P([grant(NL), erase()], {0: "email"}, NL, "email", False, "erased", (1,),
      id="erasure-beats-suppression"),
]  # fmt: skip
REASONS_COVERED = frozenset(p.values[5] for p in SCENARIOS)


@pytest.mark.parametrize(
    ("specs", "suppressions", "pid", "channel", "allowed", "reason", "evidence"), SCENARIOS
)
def test_decision_table(
    specs: list[Spec],
    suppressions: dict[int, str],
    pid: str,
    channel: str,
    allowed: bool,
    reason: str,
    evidence: tuple[int, ...],
) -> None:
    decision = decide(state_of(specs, suppressions), purpose(pid), channel, NOW)
    assert (decision.allowed, decision.reason) == (allowed, reason)
    assert decision.evidence == tuple(event_id(i) for i in evidence)


questions = st.tuples(st.sampled_from(PURPOSE_IDS), st.sampled_from(CHANNELS))


@given(logs, questions)
def test_an_erased_subject_is_denied_everything_but_legal_obligations(
    pairs: list[tuple[Event, Position]], question: tuple[str, str]
) -> None:
    pid, channel = question
    erasure = Event(
        ev.SUBJECT_ERASED, event_id(99), "sub-1", NOW, NOW, data={"ground": "objection"}
    )
    erased = [*pairs, (erasure, (3, 10_000))]
    decision = decide(fold(erased), purpose(pid), channel, NOW)
    if purpose(pid).basis == "legal_obligation":
        assert decision == decide(fold(pairs), purpose(pid), channel, NOW)
    else:
        assert decision == Decision(
            False, "erased", purpose(pid).basis, (event_id(99),), decision.decided_by
        )
        assert decision.decided_by is not None and decision.decided_by.kind == ERASURE


instants = st.sampled_from([NOW - timedelta(days=365), NOW, NOW + timedelta(days=1)])


@st.composite
def subject_states(draw: st.DrawFn) -> dict[FactKey, Fact]:
    pairs = draw(erasable_logs)
    state = fold(pairs)
    for n, kind in enumerate(draw(st.sets(st.sampled_from(["email", "phone"])))):
        # between two events (a link sets no other fact), or after the last
        offset = 10 * draw(st.integers(0, len(pairs))) + 5
        fact = Fact(
            SUPPRESSION, kind, "*", ev.IDENTIFIER_LINKED, event_id(100 + n), (3, offset), NOW
        )
        state[fact.key] = fact
    return state


@given(
    st.lists(subject_states(), min_size=1, max_size=12),
    st.sampled_from([(pid, c) for pid in PURPOSE_IDS for c in purpose(pid).channels]),
    instants,
)
def test_the_batch_check_sees_erasures_and_suppressions_as_decide_does(
    states: list[dict[FactKey, Fact]], question: tuple[str, str], now: datetime
) -> None:
    pid, channel = question
    subjects = {f"s-{n}": state for n, state in enumerate(states)}
    result = answers(batch(subjects, pid, channel, now))
    for subject, state in subjects.items():
        expected = decide(state, purpose(pid), channel, now)
        assert result[subject] == (None if expected.allowed else expected.reason)


def test_an_erased_subject_is_a_tombstone_on_the_state_feed() -> None:
    erased = fold(log([grant(NL), erase()]))
    assert is_erased(erased) and not is_erased(fold(log([grant(NL)])))
    assert {e.reason for e in entries(erased, CATALOGUE, NOW)} == {"erased"}


@pytest.mark.parametrize(
    ("event_type", "data", "refused"),
    [
        (ev.CONSENT_GRANTED, {}, True),
        (ev.DIRECT_MARKETING_OBJECTION_LIFTED, {}, True),
        (ev.RESTRICTION_LIFTED, {}, True),
        (ev.RELATIONSHIP_RECORDED, {}, True),
        (ev.IDENTIFIER_LINKED, {}, True),
        (ev.PROCESSING_OBJECTION_RESOLVED, {"outcome": "compelling_grounds"}, True),
        (ev.PROCESSING_OBJECTION_RESOLVED, {"outcome": "withdrawn"}, True),
        (ev.PROCESSING_OBJECTION_RESOLVED, {"outcome": "upheld"}, False),
        (ev.CONSENT_WITHDRAWN, {}, False),
        (ev.DIRECT_MARKETING_OBJECTED, {}, False),
        (ev.PROCESSING_OBJECTED, {}, False),
        (ev.PROCESSING_RESTRICTED, {}, False),
        (ev.RELATIONSHIP_ENDED, {}, False),
        (ev.IDENTIFIER_UNLINKED, {}, False),
        (ev.SUBJECT_ERASED, {}, False),
        (ev.RIGHTS_REQUEST_RECEIVED, {}, False),
    ],
)
def test_what_an_erased_subject_may_still_record(
    event_type: str, data: dict[str, Any], refused: bool
) -> None:
    assert reopens(event_type, data) is refused


# --- proof retention ----------------------------------------------------------------------------

ERASED_AT = datetime(2026, 1, 31, 10, 0, tzinfo=UTC)


def catalogue_with(retentions: dict[str, str]) -> Catalogue:
    from dataclasses import replace

    return Catalogue(
        {
            pid: replace(p, proof_retention=retentions.get(pid, p.proof_retention))
            for pid, p in CATALOGUE.purposes.items()
        }
    )


SHORT = catalogue_with({"newsletter": "P13M", "cookies_analytics": "P30D", "research": "P5Y"})
DM_PURPOSES = {p.id for p in CATALOGUE.purposes.values() if p.direct_marketing}


@pytest.mark.parametrize(
    ("event_type", "payload", "purposes"),
    [
        (ev.CONSENT_GRANTED, {"purpose": NL}, {NL}),
        (ev.CONSENT_WITHDRAWN, {"purpose": None}, set(PURPOSE_IDS)),
        (ev.PROCESSING_OBJECTED, {"purpose": RS}, {RS}),
        (ev.PROCESSING_RESTRICTED, {"purposes": [RS, NL]}, {RS, NL}),
        (ev.RELATIONSHIP_ENDED, {"purposes": []}, set(PURPOSE_IDS)),
        (ev.DIRECT_MARKETING_OBJECTED, {"channel": None}, DM_PURPOSES),
        (ev.RIGHTS_REQUEST_RECEIVED, {}, set(PURPOSE_IDS)),
        (ev.IDENTIFIER_LINKED, {}, set()),
        (ev.SUBJECT_ERASED, {}, set()),
    ],
)
def test_the_purposes_an_event_is_proof_for(
    event_type: str, payload: dict[str, Any], purposes: set[str]
) -> None:
    assert purposes_of(event_type, payload, CATALOGUE) == purposes


@pytest.mark.parametrize(
    ("events", "until"),
    [
        ([], ERASED_AT),
        ([(ev.IDENTIFIER_LINKED, {}), (ev.SUBJECT_ERASED, {})], ERASED_AT),
        ([(ev.CONSENT_GRANTED, {"purpose": "cookies_analytics"})], ERASED_AT + timedelta(days=30)),
        # 31 January + 13 months: the last day of February
        ([(ev.CONSENT_GRANTED, {"purpose": NL})], datetime(2027, 2, 28, 10, tzinfo=UTC)),
        ([(ev.CONSENT_GRANTED, {"purpose": NL}), (ev.PROCESSING_OBJECTED, {"purpose": RS})],
         datetime(2031, 1, 31, 10, tzinfo=UTC)),
        ([(ev.CONSENT_GRANTED, {"purpose": "a-purpose-since-removed"})],
         datetime(2031, 1, 31, 10, tzinfo=UTC)),
    ],
)  # fmt: skip
def test_the_proof_is_kept_for_the_longest_period_its_events_need(
    events: list[tuple[str, dict[str, Any]]], until: datetime
) -> None:
    assert proof_until(ERASED_AT, events, SHORT) == until


def test_the_bundled_catalogue_keeps_proof_three_years() -> None:
    assert proof_until(ERASED_AT, [(ev.CONSENT_GRANTED, {"purpose": NL})], CATALOGUE) == (
        datetime(2029, 1, 31, 10, tzinfo=UTC)
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("", "P3Y"),
        ('proof_retention = "P18M"', "P18M"),
        ('proof_retention = "P90D"', "P90D"),
        ('proof_retention = "P100Y"', "P100Y"),
        ('proof_retention = "PT1S"', "PT1S"),
    ],
)
def test_proof_retention_in_the_catalogue(tmp_path: Path, line: str, expected: str) -> None:
    path = tmp_path / "purposes.toml"
    path.write_text(_ENTRY + line)
    assert load_catalogue(path).purposes["a"].proof_retention == expected


@pytest.mark.parametrize(
    "value",
    [
        '"3 years"',
        '"P1.5Y"',
        "36",
        '""',
        '"P99999999999D"',  # overflows a timedelta
        '"P' + "9" * 4400 + 'D"',  # too long to read as a number, and long before any regex
        '"P99999Y"',  # parses, but no calendar reaches its end
        '"P101Y"',  # longer than any proof is kept
        '"P0D"',  # would purge the Art. 7(1) proof at once
        '"PT0S"',
    ],
    ids=["words", "fraction", "number", "empty", "overflow", "4400-digits", "beyond-calendar",
         "over-a-century", "nothing", "zero-time"],
)  # fmt: skip
def test_a_bad_proof_retention_is_refused_naming_the_key(tmp_path: Path, value: str) -> None:
    path = tmp_path / "purposes.toml"
    path.write_text(_ENTRY + f"proof_retention = {value}")
    with pytest.raises(CatalogueError, match=r"purposes\.a\.proof_retention"):
        load_catalogue(path)


_ENTRY = (
    '[purposes.a]\nbasis = "consent"\nchannels = ["email"]\nrecipients = []\nretention = "P1Y"\n'
)
