"""Privacy notices: when a material change outdates a grant, and the checks agreeing."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from datetime import datetime, timedelta
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from projections.fact_patterns import facts_of, pattern_of
from projections.outdating import Notice, Notices
from projections.state import Fact, FactKey, Position, fold
from schemas.events import Event
from services.api.notices import outdated_entry
from services.rules.batch import evaluate_subjects, reconsent_purpose, relevance, verdicts
from services.rules.decisions import decide
from services.rules.state_summary import entries
from tests.unit.event_log import (
    CATALOGUE,
    NOW,
    T0,
    Spec,
    dm_object,
    grant,
    log,
    relationship,
    withdraw,
)
from tests.unit.notice_support import CA, DAY, MO, NL, notice, purpose, under

V1 = notice("v1", T0 - 10 * DAY, n=1)  # the notice in force when the grants were given
V2 = notice("v2", NOW - DAY, n=2)  # a material change, in effect
V2_MINOR = notice("v2", NOW - DAY, material=False, n=2)
V2_LATER = notice("v2", NOW + DAY, n=2)  # a material change, not yet in effect
V2_OTHER = notice("v2", NOW - DAY, purposes=("marketing_partners",), n=2)
V2_NL = notice("v2", NOW - DAY, purposes=(NL,), n=2)
V3 = notice("v3", NOW - DAY / 2, n=3)
V0_AFTER = notice("v0", T0 + 10 * DAY, n=4)  # material, after the grants, before now

P = pytest.param
#: (grant under, the log, the published notices, purpose, channel, reason, evidence indexes)
#: evidence indexes name log events by position; "n" names the deciding notice
TABLE = [
    P("v1", [grant(NL)], [V1], NL, "email", "consent_given", [0], id="no-change"),
    P("v1", [grant(NL)], [V1, V2], NL, "email", "consent_outdated", [0, "v2"],
      id="material-in-effect"),
    P("v1", [grant(NL)], [V1, V2_MINOR], NL, "email", "consent_given", [0], id="not-material"),
    P("v1", [grant(NL)], [V1, V2_LATER], NL, "email", "consent_given", [0],
      id="future-effective-from"),
    P("v1", [grant(NL)], [V1, V2_OTHER], NL, "email", "consent_given", [0],
      id="other-purpose-only"),
    P("v1", [grant(NL)], [V1, V2_NL], NL, "email", "consent_outdated", [0, "v2"],
      id="this-purpose-named"),
    P("v2", [grant(NL)], [V1, V2], NL, "email", "consent_given", [0], id="given-under-new"),
    P("v2", [grant(NL)], [V1, V2, V3], NL, "email", "consent_outdated", [0, "v3"],
      id="a-later-change-again"),
    P("v1", [grant(NL)], [V1, V2, V3], NL, "email", "consent_outdated", [0, "v3"],
      id="latest-change-named"),
    P(None, [grant(NL)], [V2], NL, "email", "consent_outdated", [0, "v2"],
      id="no-version-before-change"),
    P(None, [grant(NL)], [V0_AFTER], NL, "email", "consent_outdated", [0, "v0"],
      id="no-version-judged-by-time"),
    P("v9", [grant(NL)], [V2], NL, "email", "consent_outdated", [0, "v2"],
      id="unpublished-version-judged-by-time"),
    P("v1", [grant(NL), withdraw(NL)], [V1, V2], NL, "email", "consent_withdrawn", [1],
      id="withdrawal-first"),
    P("v1", [grant(NL, expires=NOW)], [V1, V2], NL, "email", "consent_expired", [0],
      id="expiry-first"),
    P("v1", [grant(NL), dm_object()], [V1, V2], NL, "email", "objected_direct_marketing", [1],
      id="objection-first"),
    P("v1", [relationship("contract"), grant(MO)], [V1, V2], MO, "email", "consent_given", [1],
      id="legitimate-interest-default-off"),
    P("v1", [grant(CA)], [V1, V2], CA, "web", "consent_outdated", [0, "v2"],
      id="consent-purpose-default-on"),
]  # fmt: skip


def evidence(
    spec: list[int | str], pairs: list[tuple[Event, Position]], notices: Notices
) -> list[UUID]:
    return [
        notices.by_version[i].event_id if isinstance(i, str) else pairs[i][0].event_id for i in spec
    ]


@pytest.mark.parametrize(
    ("version", "specs", "published", "pid", "channel", "reason", "evidence_spec"), TABLE
)
def test_decision_rule_table(
    version: str | None,
    specs: list[Spec],
    published: list[Notice],
    pid: str,
    channel: str,
    reason: str,
    evidence_spec: list[int | str],
) -> None:
    pairs = under(version, log(specs))
    notices = Notices.of(published)
    decision = decide(fold(pairs), purpose(pid), channel, NOW, notices)
    assert (decision.reason, decision.allowed) == (reason, reason == "consent_given")
    assert list(decision.evidence) == evidence(evidence_spec, pairs, notices)
    if reason == "consent_outdated":
        assert decision.decided_by is not None
        assert decision.decided_by.event_id == pairs[0][0].event_id
    without = decide(fold(pairs), purpose(pid), channel, NOW)
    assert without.reason == ("consent_given" if reason == "consent_outdated" else reason)


def test_the_flag_turns_the_rule_off_per_purpose() -> None:
    pairs = under("v1", log([grant(NL)]))
    off = purpose(NL, reconsent_on_material_change=False)
    assert decide(fold(pairs), off, "email", NOW, Notices.of([V1, V2])).reason == "consent_given"


def test_outdated_from_the_moment_the_change_takes_effect() -> None:
    state = fold(under("v1", log([grant(NL)])))
    notices = Notices.of([V1, V2_LATER])
    nl = purpose(NL)
    assert decide(state, nl, "email", V2_LATER.effective_from - timedelta(microseconds=1),
                  notices).allowed  # fmt: skip
    assert decide(state, nl, "email", V2_LATER.effective_from, notices).reason == (
        "consent_outdated"
    )


def test_notices_taking_effect_together_do_not_outdate_each_other() -> None:
    twin = dataclasses.replace(V2, version="v2b", event_id=UUID(int=77))
    state = fold(under("v2", log([grant(NL)])))
    assert decide(state, purpose(NL), "email", NOW, Notices.of([V2, twin])).allowed


@pytest.mark.parametrize(
    ("published", "cutoff"),
    [
        ([], None),
        ([V1], V1.effective_from),
        ([V1, V2], V2.effective_from),
        ([V1, V2_LATER], V1.effective_from),
        ([V2_MINOR], None),
        ([V2_OTHER], None),
        ([V1, V2, V3], V3.effective_from),
    ],
)
def test_the_cutoff_is_the_latest_material_change_in_effect(
    published: list[Notice], cutoff: datetime | None
) -> None:
    assert Notices.of(published).cutoff(NL, NOW) == cutoff


# The batch check reduces a grant to whether it is stale; with notices it must still answer
# every recipient as decide() does.
versions = st.sampled_from([None, "v1", "v2", "v3", "v9"])
published_sets = st.lists(
    st.builds(
        notice,
        st.sampled_from(["v1", "v2", "v3"]),
        st.sampled_from([T0 - DAY, T0 + DAY, NOW - DAY, NOW, NOW + DAY]),
        material=st.booleans(),
        purposes=st.sampled_from([(), (NL,), ("marketing_partners", CA)]),
    ),
    max_size=4,
).map(Notices.of)
grant_logs = st.lists(
    st.tuples(
        versions,
        st.sampled_from(
            [grant(NL), grant(NL, "email"), grant(CA), grant("marketing_partners", "sms"),
             withdraw(NL), withdraw(), dm_object(), grant(MO), relationship("contract")]
        ),
    ),
    max_size=5,
)  # fmt: skip


def grants_log(items: list[tuple[str | None, Spec]]) -> list[tuple[Event, Position]]:
    pairs = log([spec for _, spec in items])
    return [
        (dataclasses.replace(e, notice_version=v), p)
        for (v, _), (e, p) in zip(items, pairs, strict=True)
    ]


questions = st.sampled_from([(NL, "email"), (CA, "web"), ("marketing_partners", "sms"),
                             (MO, "email")])  # fmt: skip
instants = st.sampled_from([T0, NOW - DAY, NOW, NOW + 2 * DAY])


@given(st.lists(grant_logs, min_size=1, max_size=8), published_sets, questions, instants)
def test_the_batch_check_agrees_with_decide(
    subject_logs: list[list[tuple[str | None, Spec]]],
    notices: Notices,
    question: tuple[str, str],
    now: datetime,
) -> None:
    pid, channel = question
    p = purpose(pid)
    states = {f"s-{n}": fold(grants_log(items)) for n, items in enumerate(subject_logs)}
    asking = reconsent_purpose(p)
    cutoff = notices.cutoff(asking, now) if asking else None
    groups: dict[str, list[str]] = defaultdict(list)
    for subject, state in states.items():
        pattern = pattern_of(state.values(), relevance(p, channel), now, notices, cutoff)
        if pattern:
            groups[pattern].append(subject)
    decided = verdicts(groups.items(), p, channel, now, notices)
    result = evaluate_subjects(list(states), decided, decide({}, p, channel, now, notices))
    got = {**dict.fromkeys(result.allowed), **dict(result.denied)}
    for subject, state in states.items():
        expected = decide(state, p, channel, now, notices)
        assert got[subject] == (None if expected.allowed else expected.reason)
    for pattern in groups:
        rebuilt = facts_of(pattern, now)
        assert pattern_of(rebuilt.values(), relevance(p, channel), now, notices, cutoff) == (
            pattern
        )


def test_the_state_feed_stops_an_entry_when_a_change_takes_effect() -> None:
    state = fold(under("v1", log([grant(NL, expires=NOW + 10 * DAY)])))
    [entry] = [e for e in entries(state, CATALOGUE, NOW, Notices.of([V1, V2_LATER]))
               if e.purpose == NL]  # fmt: skip
    assert (entry.allowed, entry.until) == (True, V2_LATER.effective_from)
    [later] = [e for e in entries(state, CATALOGUE, NOW, Notices.of([V1])) if e.purpose == NL]
    assert later.until == NOW + 10 * DAY
    [now_] = [e for e in entries(state, CATALOGUE, NOW, Notices.of([V1, V2])) if e.purpose == NL]
    assert (now_.allowed, now_.reason, now_.until) == (False, "consent_outdated", None)


def test_a_reconsent_entry_names_each_outdated_channel() -> None:
    mp = purpose("marketing_partners")
    state: dict[FactKey, Fact] = fold(
        under("v1", log([grant("marketing_partners"), grant("marketing_partners", "sms")]))
    )
    fresh = dataclasses.replace(
        state[("consent", "marketing_partners", "sms")], notice_version="v2"
    )
    state[fresh.key] = fresh
    entry = outdated_entry("s-1", state, mp, Notices.of([V1, V2]), NOW)
    assert entry is not None
    assert sorted(entry["channels"]) == ["email", "phone", "post"]
    assert entry["channels"]["email"]["notice_version"] == "v1"
    assert outdated_entry("s-1", state, mp, Notices.of([V1]), NOW) is None
