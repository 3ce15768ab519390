"""Batch decisions: deciding per fact pattern answers every recipient exactly as `decide()`
on the subject's whole state does; snapshot tokens; the request rules."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from projections.fact_patterns import facts_of, pattern_of
from projections.state import Fact, FactKey, Position, fold
from schemas.events import Event, subject_id_problem
from services.api.batch_request import LISTED, all_subject_ids, is_subject_id, parse_batch
from services.http.problems import ProblemError
from services.identity.identities import blind_index, email_indexes, normalise_email
from services.ledger.tokens import (
    TokenError,
    decode_snapshot_token,
    decode_token,
    encode_snapshot_token,
    encode_token,
    token_positions,
)
from services.rules.batch import (
    MAX_RECIPIENTS,
    BatchResult,
    evaluate_emails,
    evaluate_subjects,
    relevance,
    verdicts,
)
from services.rules.catalogue import Purpose
from services.rules.decisions import decide
from tests.unit.event_log import (
    CATALOGUE,
    NOW,
    PURPOSE_IDS,
    Spec,
    dm_lift,
    dm_object,
    end_relationship,
    grant,
    lift_restriction,
    log,
    logs,
    object_processing,
    relationship,
    request,
    resolve,
    restrict,
    withdraw,
)

DAY = timedelta(days=1)
KEY = bytes(range(32))


def purpose(pid: str) -> Purpose:
    found = CATALOGUE.get(pid)
    assert found is not None
    return found


def batch(
    states: Mapping[str, Mapping[FactKey, Fact]], pid: str, channel: str, now: datetime
) -> BatchResult:
    """What the route computes, with the patterns PostgreSQL would group by computed here."""
    p = purpose(pid)
    groups: dict[str, list[str]] = defaultdict(list)
    for subject, state in states.items():
        pattern = pattern_of(state.values(), relevance(p, channel), now)
        if pattern:  # the query yields no row for a subject without a relevant fact
            groups[pattern].append(subject)
    decided = verdicts(groups.items(), p, channel, now)
    return evaluate_subjects(list(states), decided, decide({}, p, channel, now))


def answers(result: BatchResult) -> dict[str, str | None]:
    """recipient -> None when allowed, else the reason."""
    return {**dict.fromkeys(result.allowed), **dict(result.denied)}


TABLE = [
    ([], "newsletter", "email", "no_consent"),
    ([grant("newsletter", "email")], "newsletter", "email", None),
    ([grant("newsletter")], "newsletter", "email", None),
    ([grant("marketing_partners", "sms")], "newsletter", "email", "no_consent"),
    ([grant("newsletter"), withdraw()], "newsletter", "email", "consent_withdrawn"),
    ([grant("newsletter"), dm_object("sms")], "newsletter", "email", None),
    ([grant("newsletter"), dm_object()], "newsletter", "email", "objected_direct_marketing"),
    ([dm_object(), dm_lift(), grant("newsletter")], "newsletter", "email", None),
    ([grant("newsletter", expires=NOW)], "newsletter", "email", "consent_expired"),
    ([request("newsletter", "email")], "newsletter", "email", "confirmation_pending"),
    ([request("newsletter", "email", NOW)], "newsletter", "email", "no_consent"),
    ([grant("newsletter"), request("newsletter", "email")], "newsletter", "email", None),
    ([request("newsletter", "email")], "marketing_partners", "email", "no_consent"),
    ([grant("newsletter", expires=NOW + DAY)], "newsletter", "email", None),
    ([grant("newsletter"), restrict("legal_claims", ["research"])], "newsletter", "email", None),
    ([grant("newsletter"), restrict("legal_claims")], "newsletter", "email", "restricted"),
    ([restrict("legal_claims"), lift_restriction()], "legal_obligation", "post", None),
    ([restrict("legal_claims")], "legal_obligation", "post", None),
    ([relationship("contract")], "customer_relationship", "email", None),
    ([relationship("contract", until=NOW)], "customer_relationship", "post", "no_legal_basis"),
    ([relationship("contract"), end_relationship()], "marketing_own", "sms", "no_legal_basis"),
    ([relationship("legitimate_interest")], "marketing_own", "sms", None),
    ([relationship("contract"), withdraw("marketing_own")], "marketing_own", "sms", "opted_out"),
    ([relationship("contract"), object_processing("research")], "research", "web",
     "objected_processing"),
    ([relationship("contract"), object_processing("research"), resolve("research", "withdrawn")],
     "research", "web", None),
]  # fmt: skip


@pytest.mark.parametrize(("specs", "pid", "channel", "reason"), TABLE)
def test_batch_table(specs: list[Spec], pid: str, channel: str, reason: str | None) -> None:
    states = {f"s-{n}": fold(log(specs)) for n in range(3)}
    result = batch(states, pid, channel, NOW)
    assert answers(result) == dict.fromkeys(states, reason)
    expected = decide(fold(log(specs)), purpose(pid), channel, NOW)
    assert (None if expected.allowed else expected.reason) == reason


questions = st.sampled_from(
    [(pid, channel) for pid in PURPOSE_IDS for channel in purpose(pid).channels]
)
instants = st.sampled_from([NOW - timedelta(days=365), NOW, NOW + DAY])


@given(st.lists(logs, min_size=1, max_size=12), questions, instants)
def test_batch_equals_decide_for_every_recipient(
    subject_logs: list[list[tuple[Event, Position]]], question: tuple[str, str], now: datetime
) -> None:
    pid, channel = question
    states = {f"s-{n}": fold(pairs) for n, pairs in enumerate(subject_logs)}
    result = batch(states, pid, channel, now)
    for subject, state in states.items():
        expected = decide(state, purpose(pid), channel, now)
        assert answers(result)[subject] == (None if expected.allowed else expected.reason)
    assert result.requested == len(states)


@given(logs, questions, instants)
def test_a_pattern_stands_for_its_facts(
    pairs: list[tuple[Event, Position]], question: tuple[str, str], now: datetime
) -> None:
    rel = relevance(purpose(question[0]), question[1])
    pattern = pattern_of(fold(pairs).values(), rel, now)
    assert pattern_of(facts_of(pattern, now).values(), rel, now) == pattern


def test_recipients_are_answered_once_in_the_order_given() -> None:
    result = evaluate_subjects(
        ["b", "a", "b", "c"], {}, decide({}, purpose("newsletter"), "email", NOW)
    )
    assert result.denied == [("b", "no_consent"), ("a", "no_consent"), ("c", "no_consent")]
    assert result.denied_by_reason() == {"no_consent": 3}


def test_emails_resolve_through_the_blind_index() -> None:
    nl = purpose("newsletter")
    given_ = ["Ada@Example.com", "nobody@example.com", "not an address", "ada@example.com"]
    index_of = email_indexes([*given_, "Ada@Example.com"], KEY)
    ada = blind_index(KEY, "email", normalise_email("ada@example.com"))
    assert index_of == {
        "Ada@Example.com": ada,
        "nobody@example.com": blind_index(KEY, "email", "nobody@example.com"),
        "ada@example.com": ada,
    }
    grant_ = decide(fold(log([grant("newsletter")])), nl, "email", NOW)
    result = evaluate_emails(
        [*given_, "Ada@Example.com"], index_of, {ada: "s-ada"}, {"s-ada": grant_}, grant_
    )
    assert result.allowed == ["Ada@Example.com", "ada@example.com"]
    assert result.denied == [
        ("nobody@example.com", "unknown_subject"),
        ("not an address", "invalid_address"),
    ]


@given(st.lists(st.integers(0, 2**62), min_size=1, max_size=50))
def test_snapshot_token_round_trip(positions: list[int]) -> None:
    token = encode_snapshot_token(positions)
    assert decode_snapshot_token(token) == positions
    assert token.isascii() and "=" not in token
    assert token_positions(token) == list(enumerate(positions))


def test_token_positions_takes_both_kinds_and_nothing_else() -> None:
    assert token_positions(encode_token(3, 17)) == [(3, 17)]
    with pytest.raises(TokenError):
        decode_token(encode_snapshot_token([1, 2]))  # a single-partition token stays one
    for text in ("", "nonsense", encode_token(1, 2)[:-1] + "!", "czEu", "czEuMS4"):
        with pytest.raises(TokenError):
            token_positions(text)


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=20) | st.sampled_from(
    ["by-identifier", "a@b.c", "cust-1", "x" * 128, "x" * 129, "a.b:c_d-e", ""]
))  # fmt: skip
def test_the_fast_subject_check_agrees_with_the_rules(value: str) -> None:
    assert is_subject_id(value) == (subject_id_problem(value) is None)


ids = st.sampled_from(["cust-1", "a.b:c", "x" * 128]) | st.text(
    alphabet=st.sampled_from("ab-\n@ ."), max_size=4
)


@given(st.lists(ids, min_size=1, max_size=6))
def test_the_joined_subject_check_agrees_item_by_item(values: list[Any]) -> None:
    assert all_subject_ids(values) == all(map(is_subject_id, values))


@pytest.mark.parametrize(
    "values",
    [["a\nb"], ["ok", "", "ok"], ["ok", "x" * 129], ["ok", 1], ["ok", "by-identifier"], ["ok"]],
)
def test_the_joined_subject_check_on_edge_cases(values: list[Any]) -> None:
    assert all_subject_ids(values) == all(map(is_subject_id, values))


def problem(body: dict[str, Any]) -> ProblemError:
    with pytest.raises(ProblemError) as caught:
        parse_batch(body, CATALOGUE)
    return caught.value


BASE = {"purpose": "newsletter", "channel": "email"}


def test_a_request_is_parsed_with_duplicates_dropped() -> None:
    ask = parse_batch({**BASE, "campaign_id": "spring-1", "subjects": ["b", "a", "b"]}, CATALOGUE)
    assert (ask.kind, ask.recipients, ask.campaign_id) == ("subjects", ["b", "a"], "spring-1")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**BASE, "subjects": ["a"], "emails": ["a@example.com"]}, "emails"),
        (BASE, "subjects"),
        ({**BASE, "subjects": []}, "subjects"),
        ({**BASE, "subjects": "cust-1"}, "subjects"),
        ({**BASE, "subjects": ["a"] * (MAX_RECIPIENTS + 1)}, "subjects"),
        ({**BASE, "emails": ["a@example.com"] * (MAX_RECIPIENTS + 1)}, "emails"),
        ({**BASE, "subjects": ["ok", 7]}, "subjects.1"),
        ({**BASE, "emails": ["ok", None, 3]}, "emails.2"),
        ({**BASE, "subjects": ["ok"], "campaign_id": "mail ada@example.com"}, "campaign_id"),
        ({**BASE, "subjects": ["ok"], "min_tokens": "abc"}, "min_tokens"),
        ({**BASE, "subjects": ["ok"], "chanel": "email"}, "chanel"),
        ({"purpose": "newsletter", "channel": "sms", "subjects": ["ok"]}, "channel"),
    ],
)
def test_bad_requests_name_the_field(body: dict[str, Any], field: str) -> None:
    found = problem(body)
    assert found.status == 422
    assert field in {e["field"] for e in found.errors}


def test_bad_subject_ids_are_pointed_at_and_counted() -> None:
    subjects = ["ok"] * 5 + ["a@example.com"] + ["ok"] * 11 + ["bad id"] * 20
    found = problem({**BASE, "subjects": subjects})
    pointers = [e["pointer"] for e in found.errors]
    assert pointers[:2] == ["#/subjects/5", "#/subjects/17"]
    assert len(pointers) == LISTED + 1 and pointers[-1] == "#/subjects"
    assert "21 entries are invalid" in found.errors[-1]["detail"]
    assert "e-mail" in found.errors[0]["detail"] and "a@example.com" not in str(found.errors)
