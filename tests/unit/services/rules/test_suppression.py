"""The do-not-contact rule (services/rules/suppression.py): a table and properties against
decide()."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from projections.state import Position, fold
from schemas.events import Event
from services.rules.decisions import decide
from services.rules.suppression import (
    CHANNEL_IDENTIFIERS,
    REASONS,
    suppression,
    withdrawable_purposes,
)
from tests.unit.event_log import (
    CATALOGUE,
    NOW,
    Spec,
    dm_lift,
    dm_object,
    event_id,
    grant,
    log,
    logs,
    relationship,
    withdraw,
)

P = pytest.param
TABLE = [
    P([], "email", None, None, id="nothing-recorded"),
    P([dm_object()], "email", "objected_direct_marketing", 0, id="objection-every-channel"),
    P([dm_object("email")], "email", "objected_direct_marketing", 0, id="objection-this-channel"),
    P([dm_object("sms")], "email", None, None, id="objection-other-channel"),
    P([dm_object(), dm_lift()], "email", None, None, id="objection-lifted"),
    P([dm_object(), dm_lift("email")], "email", None, None, id="lifted-on-this-channel"),
    P([dm_object(), dm_lift("email")], "sms", "objected_direct_marketing", 0,
      id="lifted-on-another-channel"),
    P([dm_object(), dm_lift(), dm_object("phone")], "phone", "objected_direct_marketing", 2,
      id="objected-again"),
    P([grant("newsletter"), dm_object()], "email", "objected_direct_marketing", 1,
      id="objection-beats-consent"),
    P([withdraw()], "email", "withdrawn_all", 0, id="withdrawal-of-everything"),
    P([withdraw(None, "email")], "email", "withdrawn_all", 0, id="everything-on-this-channel"),
    P([withdraw(None, "sms")], "email", None, None, id="everything-on-another-channel"),
    P([withdraw("newsletter")], "email", None, None, id="one-purpose-is-not-everything"),
    P([withdraw(), grant("newsletter", "email")], "email", None, None, id="granted-again"),
    P([withdraw(), grant("marketing_partners", "sms")], "email", "withdrawn_all", 0,
      id="granted-again-on-another-channel"),
    P([withdraw(), grant("cookies_analytics")], "email", "withdrawn_all", 0,
      id="a-grant-for-no-marketing-purpose-of-the-channel"),
    P([withdraw(), grant("newsletter", "email"), withdraw("newsletter")], "email",
      "withdrawn_all", 2, id="granted-and-withdrawn-again"),
    P([grant("marketing_own"), withdraw()], "email", "withdrawn_all", 1,
      id="withdrawal-after-grants"),
    P([relationship("contract"), withdraw()], "sms", "withdrawn_all", 1,
      id="a-relationship-does-not-undo-an-opt-out"),
    P([withdraw(), dm_object("email")], "email", "objected_direct_marketing", 1,
      id="objection-named-first"),
]  # fmt: skip


@pytest.mark.parametrize(("specs", "channel", "reason", "evidence"), TABLE)
def test_suppression_table(
    specs: list[Spec], channel: str, reason: str | None, evidence: int | None
) -> None:
    found = suppression(fold(log(specs)), channel, withdrawable_purposes(CATALOGUE, channel))
    if reason is None:
        assert found is None
    else:
        assert found is not None and found.reason == reason
        assert evidence is not None and found.fact.event_id == event_id(evidence)


def test_withdrawable_purposes_are_marketing_on_consent_or_legitimate_interest() -> None:
    assert withdrawable_purposes(CATALOGUE, "email") == [
        "newsletter",
        "marketing_own",
        "marketing_partners",
        "profiling",
    ]
    assert withdrawable_purposes(CATALOGUE, "sms") == ["marketing_own", "marketing_partners"]


@given(logs, st.sampled_from(sorted(CHANNEL_IDENTIFIERS)))
def test_a_suppressed_subject_gets_no_marketing_on_the_channel(
    pairs: list[tuple[Event, Position]], channel: str
) -> None:
    state = fold(pairs)
    purposes = withdrawable_purposes(CATALOGUE, channel)
    found = suppression(state, channel, purposes)
    if found is None:
        return
    assert found.reason in REASONS
    for pid in purposes:
        decision = decide(state, CATALOGUE.purposes[pid], channel, NOW)
        assert not decision.allowed
        expected = {
            "objected_direct_marketing": {"restricted", "objected_direct_marketing"},
            "withdrawn_all": {
                "restricted",
                "objected_processing",
                "consent_withdrawn",
                "opted_out",
            },
        }[found.reason]
        assert decision.reason in expected


@given(logs, st.sampled_from(sorted(CHANNEL_IDENTIFIERS)))
def test_an_allowed_marketing_purpose_means_no_suppression(
    pairs: list[tuple[Event, Position]], channel: str
) -> None:
    state = fold(pairs)
    purposes = withdrawable_purposes(CATALOGUE, channel)
    if any(decide(state, CATALOGUE.purposes[p], channel, NOW).allowed for p in purposes):
        assert suppression(state, channel, purposes) is None
