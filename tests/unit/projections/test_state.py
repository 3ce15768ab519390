"""The fold: which fact each event sets, latest-per-scope, and order independence."""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from projections.state import (
    ALL,
    CONSENT,
    DM_OBJECTION,
    PROCESSING_OBJECTION,
    RELATIONSHIP,
    RESTRICTION,
    Fact,
    FactKey,
    Position,
    covering,
    facts_for,
    fold,
    latest,
)
from schemas.events import Event
from tests.unit.event_log import (
    NOW,
    Spec,
    dm_lift,
    dm_object,
    end_relationship,
    event,
    event_id,
    grant,
    lift_restriction,
    log,
    logs,
    object_processing,
    relationship,
    resolve,
    restrict,
    withdraw,
)

UNTIL = NOW + timedelta(days=90)
#: (kind, scope_a, scope_b, until, outcome) of each fact an event sets
Shape = tuple[str, str, str, datetime | None, str | None]

P = pytest.param
FACTS = [
    P(grant("newsletter", "email", UNTIL), [(CONSENT, "newsletter", "email", UNTIL, None)],
      id="grant"),
    P(grant("marketing_own"), [(CONSENT, "marketing_own", ALL, None, None)],
      id="grant-all-channels"),
    P(withdraw(), [(CONSENT, ALL, ALL, None, None)], id="withdraw-everything"),
    P(withdraw("research"), [(CONSENT, "research", ALL, None, None)], id="withdraw-purpose"),
    P(withdraw(None, "sms"), [(CONSENT, ALL, "sms", None, None)], id="withdraw-channel"),
    P(dm_object(), [(DM_OBJECTION, ALL, ALL, None, None)], id="dm-objection-all"),
    P(dm_object("sms"), [(DM_OBJECTION, ALL, "sms", None, None)], id="dm-objection-sms"),
    P(dm_lift("post"), [(DM_OBJECTION, ALL, "post", None, None)], id="dm-lift"),
    P(object_processing("research"), [(PROCESSING_OBJECTION, "research", ALL, None, None)],
      id="processing-objection"),
    P(resolve("research", "upheld"), [(PROCESSING_OBJECTION, "research", ALL, None, "upheld")],
      id="processing-resolution"),
    P(restrict("legal_claims"), [(RESTRICTION, "legal_claims", ALL, None, None)],
      id="restriction-every-purpose"),
    P(restrict("legal_claims", ["research", "profiling"]),
      [(RESTRICTION, "legal_claims", "research", None, None),
       (RESTRICTION, "legal_claims", "profiling", None, None)], id="restriction-per-purpose"),
    P(lift_restriction(), [(RESTRICTION, ALL, ALL, None, None)], id="lift-everything"),
    P(lift_restriction(None, ["research"]), [(RESTRICTION, ALL, "research", None, None)],
      id="lift-purpose-every-ground"),
    P(relationship("contract", [], UNTIL), [(RELATIONSHIP, "contract", ALL, UNTIL, None)],
      id="relationship"),
    P(relationship("contract", ["web_services", "customer_relationship"], UNTIL),
      [(RELATIONSHIP, "contract", "web_services", UNTIL, None),
       (RELATIONSHIP, "contract", "customer_relationship", UNTIL, None)],
      id="relationship-per-purpose"),
    P(end_relationship(), [(RELATIONSHIP, ALL, ALL, None, None)], id="ended-every-basis"),
    P(end_relationship("legitimate_interest", ["research"]),
      [(RELATIONSHIP, "legitimate_interest", "research", None, None)], id="ended-purpose"),
    P(("SomethingElse", {}), [], id="unknown-type-sets-nothing"),
]  # fmt: skip


@pytest.mark.parametrize(("spec", "expected"), FACTS)
def test_facts_for(spec: Spec, expected: list[Shape]) -> None:
    e = event(*spec, index=4)
    facts = facts_for(e, (2, 77))
    assert [(f.kind, f.scope_a, f.scope_b, f.until, f.outcome) for f in facts] == expected
    for f in facts:
        assert (f.event_type, f.event_id, f.position) == (e.type, e.event_id, (2, 77))
        assert f.occurred_at == e.occurred_at
        assert f.key == (f.kind, f.scope_a, f.scope_b)


def fact(key: FactKey, offset: int) -> Fact:
    return Fact(*key, "E", UUID(int=offset), (0, offset), NOW)


A = (CONSENT, "newsletter", ALL)
B = (CONSENT, ALL, ALL)


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        P([], {}, id="empty"),
        P([(A, 1)], {A: 1}, id="one"),
        P([(A, 1), (A, 2)], {A: 2}, id="later-wins"),
        P([(A, 2), (A, 1)], {A: 2}, id="later-wins-when-applied-first"),
        P([(A, 5), (B, 3), (A, 4), (B, 9)], {A: 5, B: 9}, id="per-key"),
        P([(A, 3), (A, 3)], {A: 3}, id="same-fact-twice"),
    ],
)
def test_latest(facts: list[tuple[FactKey, int]], expected: dict[FactKey, int]) -> None:
    held = latest(fact(key, offset) for key, offset in facts)
    assert {key: f.position[1] for key, f in held.items()} == expected


def test_latest_compares_partition_then_offset() -> None:
    early = Fact(*A, "E", UUID(int=1), (0, 900), NOW)
    late = Fact(*A, "E", UUID(int=2), (1, 5), NOW)
    assert latest([late, early])[A] == late


@pytest.mark.parametrize(
    ("specs", "expected"),
    [
        P([withdraw(), grant("newsletter")], {(CONSENT, ALL, ALL): 0,
                                              (CONSENT, "newsletter", ALL): 1}, id="two-scopes"),
        P([grant("newsletter"), withdraw("newsletter")], {(CONSENT, "newsletter", ALL): 1},
          id="same-scope-replaced"),
        P([restrict("legal_claims", ["research"]), lift_restriction("legal_claims", ["research"]),
           restrict("legal_claims")], {(RESTRICTION, "legal_claims", "research"): 1,
                                       (RESTRICTION, "legal_claims", ALL): 2}, id="restrictions"),
        P([dm_object(), dm_lift(), dm_object("sms")], {(DM_OBJECTION, ALL, ALL): 1,
                                                       (DM_OBJECTION, ALL, "sms"): 2}, id="dm"),
    ],
)  # fmt: skip
def test_fold_keeps_latest_event_per_scope(specs: list[Spec], expected: dict[FactKey, int]) -> None:
    pairs = log(specs)
    state = fold(pairs)
    assert {key: f.event_id for key, f in state.items()} == {
        key: pairs[i][0].event_id for key, i in expected.items()
    }


@pytest.mark.parametrize(
    ("kind", "a", "b", "expected"),
    [
        P(CONSENT, "newsletter", "email", 2, id="latest-of-exact-and-all"),
        P(CONSENT, "newsletter", "sms", 0, id="purpose-all-channels"),
        P(CONSENT, "research", "email", 1, id="channel-every-purpose"),
        P(CONSENT, "research", "sms", None, id="nothing-covers"),
        P(DM_OBJECTION, ALL, "post", None, id="other-kind"),
    ],
)
def test_covering(kind: str, a: str, b: str, expected: int | None) -> None:
    pairs = log([grant("newsletter"), withdraw(None, "email"), grant("newsletter", "email")])
    found = covering(fold(pairs), kind, a, b)
    expected_id = None if expected is None else event_id(expected)
    assert (found.event_id if found else None) == expected_id


@given(logs)
def test_fold_is_idempotent(pairs: list[tuple[Event, Position]]) -> None:
    assert fold(pairs + pairs) == fold(pairs)
    assert fold([*pairs, *pairs[:1]]) == fold(pairs)


@given(logs.flatmap(lambda pairs: st.tuples(st.just(pairs), st.permutations(pairs))))
def test_fold_of_any_permutation_is_equal(
    both: tuple[list[tuple[Event, Position]], list[tuple[Event, Position]]],
) -> None:
    pairs, permuted = both
    assert fold(permuted) == fold(pairs)


@given(logs)
def test_fold_holds_one_fact_per_key_from_the_latest_event(
    pairs: list[tuple[Event, Position]],
) -> None:
    state = fold(pairs)
    every = [f for event_, pos in pairs for f in facts_for(event_, pos)]
    assert set(state) == {f.key for f in every}
    for key, held in state.items():
        assert held.position == max(f.position for f in every if f.key == key)
