"""The decision rules against the issue's precedence table, as a scenario table and properties."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from projections.state import DM_OBJECTION, Position, covering, fold
from schemas import events as ev
from schemas.events import CHANNELS, Event
from services.rules.catalogue import Purpose
from services.rules.decisions import REASONS, Decision, decide, retired_purpose, unknown_subject
from tests.unit.event_log import (
    CATALOGUE,
    NOW,
    PURPOSE_IDS,
    Spec,
    dm_lift,
    dm_object,
    end_relationship,
    event_id,
    grant,
    lift_restriction,
    log,
    logs,
    object_processing,
    relationship,
    request,
    resolve,
    restrict,
    spec_of,
    withdraw,
)
from tests.unit.services.rules.test_erasure_rules import REASONS_COVERED as ERASURE_REASONS
from tests.unit.services.rules.test_notices import TABLE as NOTICE_TABLE

NL = "newsletter"  # consent, direct marketing, email
MP = "marketing_partners"  # consent, direct marketing, email/sms/phone/post
MO = "marketing_own"  # legitimate interest, direct marketing
RS = "research"  # legitimate interest, not direct marketing
CA = "cookies_analytics"  # consent, not direct marketing, web
CR = "customer_relationship"  # contract
WS = "web_services"  # contract
LO = "legal_obligation"
DAY = timedelta(days=1)
ALLOWING = {"consent_given", "legitimate_interest", "contract", "legal_obligation"}


def purpose(pid: str) -> Purpose:
    found = CATALOGUE.get(pid)
    assert found is not None, pid
    return found


def decide_log(pairs: list[tuple[Event, Position]], pid: str, ch: str, now: datetime) -> Decision:
    return decide(fold(pairs), purpose(pid), ch, now)


P = pytest.param
SCENARIOS = [
    # no event covering the question
    P([], NL, "email", NOW, False, "no_consent", (), id="consent-purpose-no-events"),
    P([], RS, "email", NOW, False, "no_legal_basis", (), id="li-no-relationship"),
    P([], CR, "post", NOW, False, "no_legal_basis", (), id="contract-no-relationship"),
    P([], LO, "post", NOW, True, "legal_obligation", (), id="legal-obligation-no-events"),
    # consents and withdrawals
    P([grant(NL, "email")], NL, "email", NOW, True, "consent_given", (0,), id="grant"),
    P([grant(MP)], MP, "sms", NOW, True, "consent_given", (0,), id="grant-all-channels"),
    P([grant(MP, "email")], MP, "sms", NOW, False, "no_consent", (), id="grant-other-channel"),
    P([grant(MP, "sms")], NL, "email", NOW, False, "no_consent", (), id="grant-other-purpose"),
    P([grant(MO, "email")], MO, "email", NOW, True, "consent_given", (0,), id="li-with-consent"),
    P([grant(NL), withdraw(NL, "email")], NL, "email", NOW, False, "consent_withdrawn", (1,),
      id="withdrawn"),
    P([grant(NL, "email"), withdraw()], NL, "email", NOW, False, "consent_withdrawn", (1,),
      id="withdraw-without-purpose-covers-all"),
    P([grant(CA), withdraw(None, "web")], CA, "web", NOW, False, "consent_withdrawn", (1,),
      id="withdraw-channel-every-purpose"),
    P([grant(NL), withdraw(), grant(NL, "email")], NL, "email", NOW, True, "consent_given", (2,),
      id="regranted"),
    P([withdraw(MP), grant(MP, "sms")], MP, "sms", NOW, True, "consent_given", (1,),
      id="narrower-grant-after-broader-withdrawal"),
    P([withdraw(MP), grant(MP, "sms")], MP, "post", NOW, False, "consent_withdrawn", (0,),
      id="narrower-grant-leaves-other-channels"),
    P([grant(MP, "sms"), withdraw(MP)], MP, "sms", NOW, False, "consent_withdrawn", (1,),
      id="broader-withdrawal-after-narrower-grant"),
    P([withdraw(MP, "sms"), grant(MP)], MP, "sms", NOW, True, "consent_given", (1,),
      id="broader-grant-after-narrower-withdrawal"),
    P([grant(MP), withdraw(MP, "sms")], MP, "phone", NOW, True, "consent_given", (0,),
      id="narrower-withdrawal-leaves-other-channels"),
    P([grant(NL, "email", NOW)], NL, "email", NOW, False, "consent_expired", (0,),
      id="expires-exactly-now"),
    P([grant(NL, "email", NOW)], NL, "email", NOW - timedelta(microseconds=1), True,
      "consent_given", (0,), id="expires-just-after-now"),
    P([relationship("legitimate_interest"), grant(MO, "post", NOW - DAY)], MO, "post", NOW, False,
      "consent_expired", (1,), id="li-expired-consent-no-fallback"),
    # legitimate interest and relationships
    P([relationship("legitimate_interest")], RS, "web", NOW, True, "legitimate_interest", (0,),
      id="li-relationship"),
    P([relationship("contract")], MO, "sms", NOW, True, "legitimate_interest", (0,),
      id="li-accepts-contract-relationship"),
    P([relationship("contract"), withdraw(MO)], MO, "sms", NOW, False, "opted_out", (1,),
      id="li-withdrawal-opted-out"),
    P([relationship("legitimate_interest"), withdraw()], RS, "email", NOW, False, "opted_out",
      (1,), id="li-withdraw-all-opted-out"),
    P([relationship("legitimate_interest", until=NOW - DAY)], RS, "email", NOW, False,
      "no_legal_basis", (0,), id="relationship-expired"),
    P([relationship("legitimate_interest", until=NOW + DAY)], RS, "email", NOW, True,
      "legitimate_interest", (0,), id="relationship-valid-until-future"),
    P([relationship("legitimate_interest", [CR])], RS, "email", NOW, False, "no_legal_basis", (),
      id="relationship-for-other-purposes"),
    P([relationship("contract"), end_relationship("contract")], CR, "post", NOW, False,
      "no_legal_basis", (1,), id="relationship-ended"),
    P([relationship("contract"), end_relationship()], RS, "web", NOW, False, "no_legal_basis",
      (1,), id="relationship-ended-every-basis"),
    P([relationship("contract"), end_relationship(), relationship("contract")], CR, "web", NOW,
      True, "contract", (2,), id="relationship-recorded-again"),
    # contract purposes
    P([relationship("contract")], CR, "web", NOW, True, "contract", (0,), id="contract"),
    P([relationship("legitimate_interest")], CR, "web", NOW, False, "no_legal_basis", (),
      id="contract-needs-contract-basis"),
    P([relationship("contract", [WS])], WS, "web", NOW, True, "contract", (0,),
      id="contract-for-this-purpose"),
    P([relationship("contract", [WS])], CR, "web", NOW, False, "no_legal_basis", (),
      id="contract-for-other-purpose"),
    P([relationship("contract"), withdraw()], CR, "email", NOW, True, "contract", (0,),
      id="contract-ignores-withdrawal"),
    P([grant(WS, "web")], WS, "web", NOW, False, "no_legal_basis", (),
      id="contract-ignores-consent"),
    # legal obligation
    P([restrict("legal_claims"), withdraw()], LO, "post", NOW, True, "legal_obligation", (),
      id="legal-obligation-ignores-restriction"),
    # sign-ups waiting for their confirmation (double opt-in)
    P([request(NL, "email")], NL, "email", NOW, False, "confirmation_pending", (0,),
      id="pending"),
    P([request(NL, "email", NOW)], NL, "email", NOW, False, "no_consent", (),
      id="pending-expired-answers-as-before"),
    P([grant(NL), withdraw(NL), request(NL, "email", NOW - DAY)], NL, "email", NOW, False,
      "consent_withdrawn", (1,), id="pending-expired-after-withdrawal"),
    P([grant(NL), withdraw(NL), request(NL, "email")], NL, "email", NOW, False,
      "confirmation_pending", (2,), id="pending-after-withdrawal"),
    P([request(NL, "email"), withdraw(NL)], NL, "email", NOW, False, "consent_withdrawn", (1,),
      id="withdrawn-after-request"),
    P([grant(NL, "email"), request(NL, "email")], NL, "email", NOW, True, "consent_given", (0,),
      id="pending-never-takes-a-standing-grant-away"),
    P([grant(NL, "email", NOW - DAY), request(NL, "email")], NL, "email", NOW, False,
      "confirmation_pending", (1,), id="pending-after-an-expired-grant"),
    P([request(NL, "email"), grant(NL, "email")], NL, "email", NOW, True, "consent_given", (1,),
      id="confirmed"),
    P([request(MP, "sms")], MP, "email", NOW, False, "no_consent", (), id="pending-other-channel"),
    P([request(NL, "email"), dm_object()], NL, "email", NOW, False,
      "objected_direct_marketing", (1,), id="objection-outranks-pending"),
    P([dm_object(), dm_lift(), request(NL, "email")], NL, "email", NOW, False,
      "confirmation_pending", (1, 2), id="pending-names-the-lift-that-cleared"),
    P([request(NL, "email"), restrict("accuracy_contested")], NL, "email", NOW, False,
      "restricted", (1,), id="restriction-outranks-pending"),
    # restrictions
    P([grant(NL), restrict("accuracy_contested")], NL, "email", NOW, False, "restricted", (1,),
      id="restricted"),
    P([relationship("contract"), restrict("legal_claims", [CR])], CR, "web", NOW, False,
      "restricted", (1,), id="restricted-contract-purpose"),
    P([grant(NL), restrict("legal_claims", [RS])], NL, "email", NOW, True, "consent_given", (0,),
      id="restriction-of-other-purpose"),
    P([grant(NL), restrict("legal_claims"), restrict("accuracy_contested"), lift_restriction()],
      NL, "email", NOW, True, "consent_given", (0, 3), id="lift-without-ground-lifts-every-ground"),
    P([grant(NL), restrict("legal_claims"), restrict("accuracy_contested"),
       lift_restriction("legal_claims")], NL, "email", NOW, False, "restricted", (2,),
      id="lift-one-ground-keeps-other"),
    P([grant(NL), restrict("legal_claims"), lift_restriction("legal_claims", [RS])], NL, "email",
      NOW, False, "restricted", (1,), id="lift-other-purpose-keeps-restriction"),
    P([grant(NL), restrict("legal_claims"), lift_restriction(None, [NL])], NL, "email", NOW, True,
      "consent_given", (0, 2), id="lift-this-purpose"),
    P([grant(NL), lift_restriction(None, [NL]), restrict("legal_claims")], NL, "email", NOW,
      False, "restricted", (2,), id="restricted-again-after-lift"),
    # direct-marketing objections
    P([grant(NL), dm_object()], NL, "email", NOW, False, "objected_direct_marketing", (1,),
      id="dm-objection"),
    P([dm_object(), grant(NL, "email")], NL, "email", NOW, False, "objected_direct_marketing",
      (0,), id="consent-after-dm-objection-still-denied"),
    P([dm_object(), dm_lift(), grant(NL, "email")], NL, "email", NOW, True, "consent_given",
      (1, 2), id="lift-then-allowed"),
    P([dm_object(), dm_lift("sms"), grant(MP)], MP, "sms", NOW, True, "consent_given", (1, 2),
      id="narrower-lift-after-broader-objection"),
    P([dm_object(), dm_lift("sms"), grant(MP)], MP, "post", NOW, False,
      "objected_direct_marketing", (0,), id="narrower-lift-leaves-other-channels"),
    P([dm_object("sms"), dm_lift(), grant(MP)], MP, "sms", NOW, True, "consent_given", (1, 2),
      id="broader-lift-after-narrower-objection"),
    P([dm_lift("sms"), dm_object(), grant(MP)], MP, "sms", NOW, False,
      "objected_direct_marketing", (1,), id="broader-objection-after-narrower-lift"),
    P([dm_object("sms"), grant(NL, "email")], NL, "email", NOW, True, "consent_given", (1,),
      id="dm-objection-other-channel"),
    P([relationship("legitimate_interest"), dm_object()], MO, "post", NOW, False,
      "objected_direct_marketing", (1,), id="dm-objection-li-purpose"),
    P([relationship("legitimate_interest"), dm_object()], RS, "email", NOW, True,
      "legitimate_interest", (0,), id="dm-objection-ignores-other-purposes"),
    # processing objections
    P([relationship("contract"), object_processing(RS)], RS, "web", NOW, False,
      "objected_processing", (1,), id="processing-objection"),
    P([relationship("contract"), object_processing(RS)], MO, "post", NOW, True,
      "legitimate_interest", (0,), id="processing-objection-other-purpose"),
    P([relationship("contract"), object_processing(RS), resolve(RS, "compelling_grounds")], RS,
      "web", NOW, True, "legitimate_interest", (0, 2), id="compelling-grounds-clears"),
    P([relationship("contract"), object_processing(RS), resolve(RS, "withdrawn")], RS, "web", NOW,
      True, "legitimate_interest", (0, 2), id="objection-withdrawn-clears"),
    P([relationship("contract"), object_processing(RS), resolve(RS, "upheld")], RS, "web", NOW,
      False, "objected_processing", (2,), id="objection-upheld-denies"),
    P([object_processing(RS), resolve(RS, "compelling_grounds"), object_processing(RS)], RS,
      "web", NOW, False, "objected_processing", (2,), id="objected-again"),
    # precedence pairs
    P([grant(NL), dm_object(), restrict("legal_claims")], NL, "email", NOW, False, "restricted",
      (2,), id="restriction-beats-dm-objection"),
    P([restrict("legal_claims"), object_processing(RS)], RS, "web", NOW, False, "restricted",
      (0,), id="restriction-beats-processing-objection"),
    P([grant(NL), object_processing(NL), dm_object("email")], NL, "email", NOW, False,
      "objected_direct_marketing", (2,), id="dm-objection-beats-processing-objection"),
    P([object_processing(NL), grant(NL, "email")], NL, "email", NOW, False,
      "objected_processing", (0,), id="processing-objection-beats-consent"),
    P([grant(NL), restrict("legal_claims"), lift_restriction(), dm_object(), dm_lift(),
       object_processing(NL), resolve(NL, "withdrawn")], NL, "email", NOW, True, "consent_given",
      (0, 2, 4, 6), id="every-clearing-event-is-evidence"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("specs", "pid", "channel", "now", "allowed", "reason", "evidence"), SCENARIOS
)
def test_decision_table(
    specs: list[Spec],
    pid: str,
    channel: str,
    now: datetime,
    allowed: bool,
    reason: str,
    evidence: tuple[int, ...],
) -> None:
    assert channel in purpose(pid).channels
    decision = decide_log(log(specs), pid, channel, now)
    assert (decision.allowed, decision.reason) == (allowed, reason)
    assert decision.evidence == tuple(event_id(i) for i in evidence)
    assert decision.basis == purpose(pid).basis


def test_table_covers_every_reason() -> None:
    seen = {p.values[5] for p in SCENARIOS}
    seen |= {p.values[5] for p in NOTICE_TABLE}  # consent_outdated needs published notices
    seen |= ERASURE_REASONS  # erased, suppressed: tests/unit/services/rules/test_erasure_rules.py
    assert seen | {"unknown_subject", "not_in_catalogue"} == set(REASONS)


@pytest.mark.parametrize("purpose_id", [NL, RS, CA, CR, WS, LO])
def test_a_retired_purpose_is_never_allowed(purpose_id: str) -> None:
    answer = retired_purpose(purpose(purpose_id))
    assert (answer.allowed, answer.reason, answer.evidence) == (False, "not_in_catalogue", ())
    assert answer.basis == purpose(purpose_id).basis


@pytest.mark.parametrize("purpose_id", [NL, RS, CA, CR, WS, LO])
def test_an_unknown_identifier_is_never_allowed(purpose_id: str) -> None:
    answer = unknown_subject(purpose(purpose_id))
    assert (answer.allowed, answer.reason, answer.evidence) == (False, "unknown_subject", ())


questions = st.tuples(st.sampled_from(PURPOSE_IDS), st.sampled_from(CHANNELS))


@given(logs, questions, st.randoms(use_true_random=False))
def test_decide_is_independent_of_fold_order(
    pairs: list[tuple[Event, Position]], question: tuple[str, str], rnd: random.Random
) -> None:
    shuffled = list(pairs)
    rnd.shuffle(shuffled)
    assert fold(shuffled) == fold(pairs)
    pid, channel = question
    assert decide_log(shuffled, pid, channel, NOW) == decide_log(pairs, pid, channel, NOW)


@given(logs, questions)
def test_a_sign_up_never_takes_an_answer_away_and_only_replaces_missing_consent(
    pairs: list[tuple[Event, Position]], question: tuple[str, str]
) -> None:
    pid, channel = question
    before = decide_log(pairs, pid, channel, NOW)
    after = decide_log(
        log([*(spec_of(e) for e, _ in pairs), request(pid, channel)]), pid, channel, NOW
    )
    if before.reason in ("no_consent", "consent_withdrawn", "consent_expired", "consent_outdated"):
        assert (after.allowed, after.reason) == (False, "confirmation_pending")
        assert after.evidence[-1] == event_id(len(pairs))
    else:
        assert (after.allowed, after.reason) == (before.allowed, before.reason)


@given(logs, st.sampled_from(CHANNELS))
def test_legal_obligation_is_always_allowed(
    pairs: list[tuple[Event, Position]], channel: str
) -> None:
    assert decide_log(pairs, "legal_obligation", channel, NOW) == Decision(
        True, "legal_obligation", "legal_obligation", ()
    )


@given(logs, questions)
def test_dm_objection_stops_every_direct_marketing_purpose(
    pairs: list[tuple[Event, Position]], question: tuple[str, str]
) -> None:
    pid, channel = question
    state = fold(pairs)
    objection = covering(state, DM_OBJECTION, "*", channel)
    if purpose(pid).direct_marketing and objection is not None:
        decision = decide(state, purpose(pid), channel, NOW)
        if objection.event_type == ev.DIRECT_MARKETING_OBJECTED:
            assert not decision.allowed
            assert decision.reason in ("restricted", "objected_direct_marketing")
        else:
            assert decision.reason != "objected_direct_marketing"


@given(logs, questions, st.sampled_from([NOW - timedelta(days=365), NOW, NOW + timedelta(days=1)]))
def test_evidence_is_folded_events_in_log_order(
    pairs: list[tuple[Event, Position]], question: tuple[str, str], now: datetime
) -> None:
    position = {event.event_id: pos for event, pos in pairs}
    decision = decide_log(pairs, *question, now)
    assert set(decision.evidence) <= set(position)
    order = [position[i] for i in decision.evidence]
    assert order == sorted(set(order)), "ordered by position, each event once"


@given(logs, questions)
def test_allowed_exactly_for_allowing_reasons(
    pairs: list[tuple[Event, Position]], question: tuple[str, str]
) -> None:
    decision = decide_log(pairs, *question, NOW)
    assert decision.reason in REASONS
    assert decision.allowed == (decision.reason in ALLOWING)
    if decision.reason in ("restricted", "objected_direct_marketing", "objected_processing"):
        assert decision.evidence, "a denial by an objection or restriction names it"
