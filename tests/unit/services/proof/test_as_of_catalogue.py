"""As of an instant, a decision uses the purpose definitions then in force: for any log with
purpose changes, the as-of answer (the events recorded by then folded, decided with
`CatalogueHistory.at`) equals the answer a live ledger gave at that instant, which applied
each event and each new purpose version as it arrived."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from projections.as_of import known_at
from projections.state import Fact, FactKey, Position, facts_for
from schemas.events import Event
from services.rules.as_of_decision import decide_as_of
from services.rules.catalogue import Purpose
from services.rules.catalogue_history import CatalogueHistory, PurposeRetirement, PurposeVersion
from services.rules.decisions import Decision, decide, retired_purpose
from tests.properties import examples
from tests.unit.event_log import CATALOGUE, T0, event
from tests.unit.event_log import specs as st_specs

#: purposes whose definitions change in the generated logs: consent, legitimate interest and
#: contract ones, with and without direct marketing
CHANGING = ("newsletter", "marketing_own", "customer_relationship", "research")
SPAN = 60


def minute(n: int) -> datetime:
    return T0 + timedelta(minutes=n)


@dataclass(frozen=True)
class Change:
    """A new definition of a purpose (basis, marketing flag, channels) or its retirement."""

    purpose: str
    basis: str
    direct_marketing: bool
    channels: tuple[str, ...]
    retire: bool


changes = st.builds(
    Change,
    st.sampled_from(CHANGING),
    st.sampled_from(("consent", "legitimate_interest", "contract", "legal_obligation")),
    st.booleans(),
    st.lists(st.sampled_from(("email", "sms", "web")), min_size=1, max_size=3, unique=True).map(
        tuple
    ),
    st.sampled_from((False, False, False, True)),
)


def decision_at(
    events: list[tuple[Event, Position]],
    history: CatalogueHistory,
    purpose_id: str,
    channel: str,
    at: datetime,
) -> Decision | None:
    """The as-of answer as `GET /v1/decision?at=` composes it (services/rules/as_of_decision.py)
    over the events recorded by `at`."""
    known = known_at(events, at)
    return decide_as_of(history, purpose_id, channel, at, known.state, known.notices)


def versions_of(
    timed: list[tuple[int, Change]], *, in_log_order: bool = False
) -> list[PurposeVersion]:
    """The file's catalogue at the epoch of the log, then each change with the purpose's next
    version number (a retired purpose may be defined again): in time order, or `in_log_order`
    as given, so a later version may say it came into force before an earlier one (a server
    whose clock was behind)."""
    out = [PurposeVersion(minute(-1), p) for p in CATALOGUE.purposes.values()]
    number = dict.fromkeys(CATALOGUE.ids, 1)
    for at, change in timed if in_log_order else sorted(timed, key=lambda x: x[0]):
        number[change.purpose] += 1
        n = number[change.purpose]
        base = CATALOGUE.purposes[change.purpose]
        definition: Purpose | PurposeRetirement
        if change.retire:
            definition = PurposeRetirement(change.purpose, n)
        else:
            definition = replace(
                base,
                version=n,
                basis=change.basis,
                direct_marketing=change.direct_marketing,
                channels=change.channels,
                reconsent_on_material_change=change.basis == "consent",
            )
        out.append(PurposeVersion(minute(at), definition))
    return out


def subject_log(
    timed: list[tuple[int, tuple[str, dict[str, object]]]],
) -> list[tuple[Event, Position]]:
    """The subject's events in log order, recorded at non-decreasing minutes."""
    out = []
    for i, (at, (type_, data)) in enumerate(sorted(timed, key=lambda x: x[0])):
        e = replace(event(type_, data, i), occurred_at=minute(at), recorded_at=minute(at))
        out.append((e, (0, i)))
    return out


def live_answers(
    events: list[tuple[Event, Position]],
    versions: list[PurposeVersion],
    probes: list[datetime],
    scopes: list[tuple[str, str]],
) -> dict[tuple[datetime, str, str], Decision | None]:
    """A live ledger: it applies each event and each purpose version once it is recorded (in
    log order; a purpose's versions in their order, none before its predecessor) and decides
    at each probe with what it holds then; a retired purpose is denied `not_in_catalogue`
    for a channel of its last definition."""
    state: dict[FactKey, Fact] = {}
    live: dict[str, Purpose] = {}
    retired: dict[str, Purpose] = {}
    pending_events = list(events)
    since: dict[str, datetime] = {}
    effective = []
    for v in sorted(versions, key=lambda v: (v.id, v.version)):
        since[v.id] = max(v.in_force_from, since.get(v.id, v.in_force_from))
        effective.append(PurposeVersion(since[v.id], v.definition))
    pending_versions = sorted(effective, key=lambda v: (v.in_force_from, v.version))
    out: dict[tuple[datetime, str, str], Decision | None] = {}
    for probe in sorted(probes):
        while pending_versions and pending_versions[0].in_force_from <= probe:
            v = pending_versions.pop(0)
            if isinstance(v.definition, Purpose):
                live[v.id] = v.definition
                retired.pop(v.id, None)
            elif v.id in live:
                retired[v.id] = live.pop(v.id)
        while pending_events and pending_events[0][0].recorded_at <= probe:
            e, position = pending_events.pop(0)
            for fact in facts_for(e, position):
                held = state.get(fact.key)
                if held is None or fact.position > held.position:
                    state[fact.key] = fact
        for pid, channel in scopes:
            purpose = live.get(pid)
            gone = retired.get(pid)
            if purpose is not None and channel in purpose.channels:
                out[(probe, pid, channel)] = decide(state, purpose, channel, probe)
            elif gone is not None and channel in gone.channels:
                out[(probe, pid, channel)] = retired_purpose(gone)
            else:
                out[(probe, pid, channel)] = None
    return out


minutes = st.integers(min_value=0, max_value=SPAN)


@settings(max_examples=examples(150))
@given(
    st.lists(st.tuples(minutes, changes), max_size=6),
    st.lists(st.tuples(minutes, st_specs), max_size=10),
    st.lists(minutes, min_size=1, max_size=6),
    st.booleans(),
)
def test_every_as_of_decision_is_the_decision_made_then(
    purpose_changes: list[tuple[int, Change]],
    subject_events: list[tuple[int, tuple[str, dict[str, object]]]],
    extra_probes: list[int],
    in_log_order: bool,
) -> None:
    versions = versions_of(purpose_changes, in_log_order=in_log_order)
    history = CatalogueHistory(versions)
    events = subject_log(subject_events)
    # every instant something changed, just before it, and a few others
    moments = {at for at, _ in purpose_changes} | {at for at, _ in subject_events}
    probes = sorted(
        {minute(m) for m in moments | set(extra_probes)}
        | {minute(m) - timedelta(seconds=1) for m in moments}
    )
    scopes = [(pid, c) for pid in CHANGING for c in ("email", "sms", "web")]
    live = live_answers(events, versions, probes, scopes)
    for (at, pid, channel), then in live.items():
        assert decision_at(events, history, pid, channel, at) == then, (at, pid, channel)


def test_a_changed_basis_changes_the_answer_only_from_its_instant() -> None:
    """The table case of the property: newsletter turns from consent to contract at minute 20;
    with no grant, the answer is no_consent before and no_legal_basis after."""
    versions = versions_of(
        [(20, Change("newsletter", "contract", False, ("email",), retire=False))]
    )
    history = CatalogueHistory(versions)
    events = subject_log(
        [(5, ("RelationshipEnded", {"basis": None, "purposes": [], "evidence": None}))]
    )
    reasons = {
        at: made.reason
        if (made := decision_at(events, history, "newsletter", "email", minute(at)))
        else None
        for at in (10, 19, 20, 30)
    }
    assert reasons == {
        10: "no_consent",
        19: "no_consent",
        20: "no_legal_basis",
        30: "no_legal_basis",
    }


def test_a_retired_purpose_answers_for_the_past_only() -> None:
    versions = versions_of([(30, Change("newsletter", "consent", True, ("email",), retire=True))])
    history = CatalogueHistory(versions)
    events = subject_log(
        [(5, ("ConsentGranted", {"purpose": "newsletter", "channel": "email", "expires_at": None}))]
    )
    before = decision_at(events, history, "newsletter", "email", minute(29))
    assert before is not None and before.reason == "consent_given"
    after = decision_at(events, history, "newsletter", "email", minute(30))
    assert after is not None and after.reason == "not_in_catalogue"
    assert decision_at(events, history, "newsletter", "sms", minute(30)) is None
