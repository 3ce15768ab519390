"""Request bodies to events: what each builder appends, and the 422 that names a bad field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schemas import events as ev
from schemas.events import Actor, Source
from services.api import commands as c
from services.http.body import Fields, check_subject_id, parse_time
from services.http.problems import ProblemError
from tests.unit.event_log import CATALOGUE, NOW

CTX = c.Context("crm:42", NOW, CATALOGUE)
LATER = "2027-01-01T00:00:00Z"
LATER_T = datetime(2027, 1, 1, tzinfo=UTC)
EARLIER = "2025-12-01T00:00:00+01:00"


def stamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def build(builder: c.Builder, body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(e.type, dict(e.data)) for e in builder(Fields(body), CTX)]


P = pytest.param
VALID = [
    P(c.grant_consent, {"purpose": "newsletter", "channel": "email"},
      [(ev.CONSENT_GRANTED, ev.grant_data("newsletter", "email"))],
      id="grant"),
    P(c.grant_consent, {"purpose": "marketing_own", "expires_at": LATER, "notice_version": "v3"},
      [(ev.CONSENT_GRANTED, ev.grant_data("marketing_own", None, LATER_T))],
      id="grant-li-purpose-all-channels"),
    P(c.grant_consent, {"purpose": "newsletter", "lift_objection": False},
      [(ev.CONSENT_GRANTED, ev.grant_data("newsletter", None))],
      id="grant-lift-false"),
    P(c.withdraw_consent, {},
      [(ev.CONSENT_WITHDRAWN, {"purpose": None, "channel": None, "reason": None})],
      id="withdraw-everything"),
    P(c.withdraw_consent, {"purpose": "marketing_partners", "channel": "sms", "reason": "stop"},
      [(ev.CONSENT_WITHDRAWN, {"purpose": "marketing_partners", "channel": "sms",
                               "reason": "stop"})], id="withdraw-scoped"),
    P(c.withdraw_consent, {"channel": "web"},
      [(ev.CONSENT_WITHDRAWN, {"purpose": None, "channel": "web", "reason": None})],
      id="withdraw-channel"),
    P(c.object_, {"kind": "direct_marketing"}, [(ev.DIRECT_MARKETING_OBJECTED, {"channel": None})],
      id="dm-objection"),
    P(c.object_, {"kind": "direct_marketing", "channel": "post"},
      [(ev.DIRECT_MARKETING_OBJECTED, {"channel": "post"})], id="dm-objection-channel"),
    P(c.object_, {"kind": "processing", "purpose": "research"},
      [(ev.PROCESSING_OBJECTED, {"purpose": "research"})], id="processing-objection"),
    P(c.lift_objection, {"kind": "direct_marketing", "channel": "sms", "evidence": "phone call"},
      [(ev.DIRECT_MARKETING_OBJECTION_LIFTED, {"channel": "sms", "evidence": "phone call"})],
      id="dm-lift"),
    P(c.lift_objection, {"kind": "processing", "purpose": "profiling", "evidence": "form"},
      [(ev.PROCESSING_OBJECTION_RESOLVED, {"purpose": "profiling", "outcome": "withdrawn",
                                           "evidence": "form"})], id="processing-lift"),
    P(c.resolve_objection, {"purpose": "research", "outcome": "compelling_grounds"},
      [(ev.PROCESSING_OBJECTION_RESOLVED, {"purpose": "research",
                                           "outcome": "compelling_grounds", "evidence": None})],
      id="resolve"),
    P(c.restrict, {"ground": "legal_claims"},
      [(ev.PROCESSING_RESTRICTED, {"ground": "legal_claims", "purposes": []})], id="restrict"),
    P(c.restrict, {"ground": "accuracy_contested", "purposes": ["research", "profiling",
                                                                "research"]},
      [(ev.PROCESSING_RESTRICTED, {"ground": "accuracy_contested",
                                   "purposes": ["research", "profiling"]})],
      id="restrict-purposes-deduplicated"),
    P(c.lift_restriction, {"subject_informed_at": EARLIER},
      [(ev.RESTRICTION_LIFTED, {"ground": None, "purposes": [], "evidence": None,
                                "subject_informed_at": datetime(2025, 11, 30, 23, tzinfo=UTC)})],
      id="lift-restriction-everything"),
    P(c.lift_restriction, {"subject_informed_at": stamp(NOW), "ground": "legal_claims"},
      [(ev.RESTRICTION_LIFTED, {"ground": "legal_claims", "purposes": [], "evidence": None,
                                "subject_informed_at": NOW})],
      id="lift-restriction-informed-at-the-lift"),
    P(c.record_relationship, {"basis": "contract", "purposes": ["web_services"],
                              "valid_until": LATER},
      [(ev.RELATIONSHIP_RECORDED, {"basis": "contract", "purposes": ["web_services"],
                                   "valid_until": LATER_T})], id="relationship"),
    P(c.end_relationship, {"basis": "legitimate_interest", "evidence": "closed"},
      [(ev.RELATIONSHIP_ENDED, {"basis": "legitimate_interest", "purposes": [],
                                "evidence": "closed"})], id="end-relationship"),
]  # fmt: skip


@pytest.mark.parametrize(("builder", "body", "expected"), VALID)
def test_valid_body_builds_events(
    builder: c.Builder, body: dict[str, Any], expected: list[tuple[str, dict[str, Any]]]
) -> None:
    assert build(builder, body) == expected


#: the smallest valid body per command path
MINIMAL: dict[str, dict[str, Any]] = {
    "consents": {"purpose": "newsletter"},
    "objections": {"kind": "direct_marketing"},
    "objections/lift": {"kind": "direct_marketing", "evidence": "call"},
    "objections/resolve": {"purpose": "research", "outcome": "upheld"},
    "restrictions": {"ground": "legal_claims"},
    "restrictions/lift": {"subject_informed_at": EARLIER},
    "relationships": {"basis": "contract"},
}


@pytest.mark.parametrize("path", list(c.COMMANDS))
def test_envelope_defaults(path: str) -> None:
    [event] = c.COMMANDS[path](Fields(MINIMAL.get(path, {})), CTX)
    assert (event.subject_id, event.occurred_at, event.recorded_at) == ("crm:42", NOW, NOW)
    assert (event.source, event.actor, event.notice_version) == (Source(), Actor("system"), None)


@pytest.mark.parametrize(
    ("extra", "source", "actor"),
    [
        P({"method": "support"}, Source("support"), Actor("staff"), id="support-is-staff"),
        P({"method": "form", "source": {"system": "shop", "collection_point": "footer"}},
          Source("form", "shop", "footer"), Actor("subject"), id="form-is-subject"),
        P({"method": "import", "source": {"system": "crm"}}, Source("import", "crm"),
          Actor("system", "crm"), id="import-is-the-system"),
        P({"method": "support", "actor": {"type": "staff", "id": "agent-7"}}, Source("support"),
          Actor("staff", "agent-7"), id="explicit-actor"),
    ],
)  # fmt: skip
def test_source_and_actor(extra: dict[str, Any], source: Source, actor: Actor) -> None:
    [event] = c.withdraw_consent(Fields(extra), CTX)
    assert (event.source, event.actor) == (source, actor)


@pytest.mark.parametrize(
    ("occurred_at", "expected"),
    [
        P(EARLIER, datetime(2025, 11, 30, 23, tzinfo=UTC), id="past-as-utc"),
        P(stamp(NOW + timedelta(minutes=5)), NOW + timedelta(minutes=5), id="within-clock-skew"),
    ],
)
def test_occurred_at(occurred_at: str, expected: datetime) -> None:
    [event] = c.withdraw_consent(Fields({"occurred_at": occurred_at}), CTX)
    assert (event.occurred_at, event.recorded_at) == (expected, NOW)


@pytest.mark.parametrize("channel", [None, "sms"])
def test_lift_objection_with_consent_appends_lift_then_grant(channel: str | None) -> None:
    body = {"purpose": "marketing_partners", "channel": channel, "lift_objection": True}
    lift, grant = c.grant_consent(Fields(body), CTX)
    assert (lift.type, grant.type) == (ev.DIRECT_MARKETING_OBJECTION_LIFTED, ev.CONSENT_GRANTED)
    assert lift.data["channel"] == grant.data["channel"] == channel
    assert str(grant.event_id) in lift.data["evidence"]
    assert lift.event_id != grant.event_id
    assert lift.occurred_at == grant.occurred_at


SKEWED = stamp(NOW + timedelta(minutes=6))
EMAIL = "asked by jane.doe@example.com"
INVALID = [
    P(c.grant_consent, {"purpose": "newsletter", "colour": "red"}, {"colour"}, id="unknown-field"),
    P(c.withdraw_consent, {"source": {"sytem": "crm"}}, {"source.sytem"},
      id="unknown-nested-field"),
    P(c.grant_consent, {"purpose": "spam"}, {"purpose"}, id="unknown-purpose"),
    P(c.grant_consent, {"purpose": "newsletter", "channel": "sms"}, {"channel"},
      id="channel-not-allowed-for-purpose"),
    P(c.withdraw_consent, {"channel": "fax"}, {"channel"}, id="unknown-channel"),
    P(c.grant_consent, {"purpose": ["newsletter"]}, {"purpose"}, id="wrong-type-purpose"),
    P(c.grant_consent, {"purpose": "newsletter", "lift_objection": "yes"}, {"lift_objection"},
      id="wrong-type-flag"),
    P(c.grant_consent, {"purpose": "newsletter", "notice_version": 3}, {"notice_version"},
      id="wrong-type-text"),
    P(c.restrict, {"ground": "legal_claims", "purposes": "research"}, {"purposes"},
      id="wrong-type-list"),
    P(c.withdraw_consent, {"source": "crm"}, {"source"}, id="wrong-type-object"),
    P(c.withdraw_consent, {"occurred_at": 1767225600}, {"occurred_at"}, id="wrong-type-time"),
    P(c.grant_consent, {}, {"purpose"}, id="missing-purpose"),
    P(c.object_, {}, {"kind"}, id="missing-kind"),
    P(c.restrict, {}, {"ground"}, id="missing-ground"),
    P(c.record_relationship, {}, {"basis"}, id="missing-basis"),
    P(c.resolve_objection, {"purpose": "research"}, {"outcome"}, id="missing-outcome"),
    P(c.lift_objection, {"kind": "direct_marketing"}, {"evidence"}, id="missing-evidence"),
    P(c.withdraw_consent, {"actor": {"id": "agent-7"}}, {"actor.type"}, id="missing-actor-type"),
    P(c.lift_objection, {"kind": "direct_marketing", "evidence": EMAIL}, {"evidence"},
      id="email-in-evidence"),
    P(c.withdraw_consent, {"reason": EMAIL}, {"reason"}, id="email-in-reason"),
    P(c.withdraw_consent, {"source": {"system": EMAIL}}, {"source.system"},
      id="email-in-source"),
    P(c.withdraw_consent, {"actor": {"type": "staff", "id": EMAIL}}, {"actor.id"},
      id="email-in-actor"),
    P(c.lift_objection, {"kind": "direct_marketing", "evidence": " "}, {"evidence"},
      id="blank-evidence"),
    P(c.withdraw_consent, {"reason": "x" * 501}, {"reason"}, id="too-long"),
    P(c.withdraw_consent, {"occurred_at": SKEWED}, {"occurred_at"}, id="occurred-at-future"),
    P(c.withdraw_consent, {"occurred_at": "2026-01-01T12:00:00"}, {"occurred_at"},
      id="occurred-at-without-offset"),
    P(c.grant_consent, {"purpose": "newsletter", "expires_at": EARLIER}, {"expires_at"},
      id="expires-before-occurred-now"),
    P(c.grant_consent, {"purpose": "newsletter", "occurred_at": LATER, "expires_at": EARLIER},
      {"occurred_at", "expires_at"}, id="expires-before-occurred-at"),
    P(c.grant_consent, {"purpose": "newsletter", "occurred_at": EARLIER, "expires_at": EARLIER},
      {"expires_at"}, id="expires-at-occurred-at"),
    P(c.record_relationship, {"basis": "contract", "valid_until": EARLIER}, {"valid_until"},
      id="valid-until-before-occurred"),
    P(c.withdraw_consent, {"method": "carrier_pigeon"}, {"method"}, id="unknown-method"),
    P(c.object_, {"kind": "everything"}, {"kind"}, id="unknown-kind"),
    P(c.restrict, {"ground": "boredom"}, {"ground"}, id="unknown-ground"),
    P(c.lift_restriction, {"ground": "boredom", "subject_informed_at": EARLIER}, {"ground"},
      id="unknown-ground-lift"),
    P(c.lift_restriction, {}, {"subject_informed_at"}, id="lift-without-informing"),
    P(c.lift_restriction, {"subject_informed_at": LATER}, {"subject_informed_at"},
      id="informed-after-the-lift"),
    P(c.lift_restriction, {"occurred_at": EARLIER, "subject_informed_at": stamp(NOW)},
      {"subject_informed_at"}, id="informed-after-a-backdated-lift"),
    P(c.restrict, {"ground": "legal_claims", "purposes": ["research", "spam"]}, {"purposes"},
      id="unknown-purpose-in-list"),
    P(c.record_relationship, {"basis": "consent"}, {"basis"}, id="unknown-basis"),
    P(c.resolve_objection, {"purpose": "research", "outcome": "withdrawn"}, {"outcome"},
      id="resolve-cannot-withdraw"),
    P(c.object_, {"kind": "processing"}, {"purpose"}, id="processing-objection-without-purpose"),
    P(c.object_, {"kind": "processing", "purpose": "research", "channel": "email"}, {"channel"},
      id="processing-objection-with-channel"),
    P(c.object_, {"kind": "direct_marketing", "purpose": "newsletter"}, {"purpose"},
      id="dm-objection-with-purpose"),
    P(c.object_, {"kind": "processing", "purpose": "legal_obligation"}, {"purpose"},
      id="processing-objection-legal-obligation"),
    P(c.lift_objection, {"kind": "processing", "purpose": "legal_obligation", "evidence": "x"},
      {"purpose"}, id="lift-processing-objection-legal-obligation"),
    P(c.resolve_objection, {"purpose": "legal_obligation", "outcome": "upheld"}, {"purpose"},
      id="resolve-legal-obligation"),
    P(c.object_, {"kind": "processing", "purpose": "newsletter"}, {"purpose"},
      id="processing-objection-consent-purpose"),
    P(c.object_, {"kind": "processing", "purpose": "web_services"}, {"purpose"},
      id="processing-objection-contract-purpose"),
    P(c.resolve_objection, {"purpose": "customer_relationship", "outcome": "upheld"},
      {"purpose"}, id="resolve-contract-purpose"),
    P(c.grant_consent, {"purpose": "customer_relationship"}, {"purpose"},
      id="consent-for-contract-purpose"),
    P(c.grant_consent, {"purpose": "legal_obligation", "lift_objection": True}, {"purpose"},
      id="consent-for-legal-obligation"),
    P(c.grant_consent, {"purpose": "spam", "channel": "fax", "when": 1},
      {"purpose", "channel", "when"}, id="every-bad-field-named"),
    P(c.grant_consent, {"purpose": "newsletter", "method": "double_opt_in"}, {"method"},
      id="double-opt-in-only-through-signups"),
    P(c.withdraw_consent, {"method": "double_opt_in"}, {"method"},
      id="double-opt-in-on-no-command"),
]  # fmt: skip


@pytest.mark.parametrize(("builder", "body", "fields"), INVALID)
def test_invalid_body_is_a_422_naming_the_field(
    builder: c.Builder, body: dict[str, Any], fields: set[str]
) -> None:
    with pytest.raises(ProblemError) as caught:
        builder(Fields(body), CTX)
    assert caught.value.status == 422
    assert {e["field"] for e in caught.value.errors} == fields
    assert all(e["detail"] for e in caught.value.errors)


def test_a_double_opt_in_grant_is_refused_naming_the_signups_route() -> None:
    body = {"purpose": "newsletter", "channel": "email", "method": "double_opt_in"}
    with pytest.raises(ProblemError) as caught:
        c.grant_consent(Fields(body), CTX)
    (error,) = caught.value.errors
    assert error["field"] == "method"
    assert "/signups" in error["detail"]


@pytest.mark.parametrize(
    "subject_id", ["jane@example.com", "x" * 129, "", "a b", "jane.doe@example"]
)
def test_check_subject_id_refuses(subject_id: str) -> None:
    with pytest.raises(ProblemError) as caught:
        check_subject_id(subject_id)
    assert caught.value.status == 422
    assert [e["field"] for e in caught.value.errors] == ["subject_id"]


@pytest.mark.parametrize("subject_id", ["crm:42", "x" * 128, "a.b_c-d:9"])
def test_check_subject_id_accepts(subject_id: str) -> None:
    assert check_subject_id(subject_id) == subject_id


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-31T12:00:00Z", datetime(2026, 1, 31, 12, tzinfo=UTC)),
        ("2026-01-31t12:00:00z", datetime(2026, 1, 31, 12, tzinfo=UTC)),
        ("2026-01-31T12:00:00+02:00", datetime(2026, 1, 31, 10, tzinfo=UTC)),
        ("2026-01-31T12:00:00-00:00", datetime(2026, 1, 31, 12, tzinfo=UTC)),
        ("2026-01-31T12:00:00.25-01:30", datetime(2026, 1, 31, 13, 30, 0, 250000, tzinfo=UTC)),
        ("2026-01-31T12:00:00.123456Z", datetime(2026, 1, 31, 12, 0, 0, 123456, tzinfo=UTC)),
        ("2026-01-31T12:00:00", None),  # no offset
        ("2026-01-31 12:00:00Z", None),  # space separator
        ("2026-01-31", None),
        ("2026-01-31T12:00Z", None),  # no seconds
        ("2026-01-31T12:00+01:00", None),  # no seconds
        ("2026-01-31T12:00:00+01", None),  # offset without minutes
        ("2026-01-31T12:00:00+0100", None),  # offset without colon
        ("2026-01-31T12:00:00+01:00:30", None),  # offset with seconds
        ("2026-01-31T12:00:00,5Z", None),  # comma fraction
        ("2026-01-31T12:00:00.Z", None),  # empty fraction
        ("2026-W05-6T12:00:00Z", None),  # ISO week date
        ("20260131T120000+0000", None),  # ISO basic format
        ("2026-02-30T12:00:00Z", None),  # no such day
        ("2026-01-31T24:00:00Z", None),
        ("2026-01-31T12:00:00+24:00", None),
        ("２０２６-01-31T12:00:00Z", None),  # non-ASCII digits  # noqa: RUF001
        ("yesterday", None),
        ("", None),
    ],
)
def test_parse_time(text: str, expected: datetime | None) -> None:
    parsed = parse_time(text)
    assert parsed == expected
    if parsed is not None:
        assert parsed.tzinfo is UTC
