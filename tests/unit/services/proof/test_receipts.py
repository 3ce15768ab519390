"""Consent receipts: both formats built from a table of events, and their JWS signatures
(round trip, tampering, key rotation, the JWK set an independent library reads)."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest
from joserfc import jws as jose_jws
from joserfc.errors import SecurityWarning
from joserfc.jwk import KeySet

from projections.outdating import Notice
from schemas import events as ev
from schemas.events import Actor, Event, Source
from services.identity.secrets import KeyRing, new_key, parse_key_ring
from services.proof import receipt_signing as signing
from services.proof.receipts import (
    FORMATS,
    Issuer,
    NoReceipt,
    build,
    iso_duration,
)
from services.rules.catalogue import Catalogue, parse_purpose
from tests.unit.event_log import CATALOGUE, NOW

ISSUER = Issuer("Example Oy", "https://example.com/privacy/contact", "FI")
NOTICE = Notice(
    "2026-01",
    NOW - timedelta(days=60),
    "ab" * 32,
    "https://example.com/privacy/2026-01",
    True,
    (),
    "fi",
)
EVENT_ID = UUID("5e2281f2-1ee4-4994-8672-bf369166b69d")


def event(type_: str, data: dict[str, Any], **changes: Any) -> Event:
    base = Event(
        type=type_,
        event_id=EVENT_ID,
        subject_id="cust-4711",
        occurred_at=NOW,
        recorded_at=NOW + timedelta(seconds=1),
        source=Source("double_opt_in", "website", "footer-signup"),
        actor=Actor("subject", None),
        notice_version="2026-01",
        data=data,
    )
    return dataclasses.replace(base, **changes)


GRANT = event(
    ev.CONSENT_GRANTED,
    {
        "purpose": "newsletter",
        "channel": "email",
        "expires_at": None,
        "request_event_id": None,
        "evidence": None,
    },
)
EXPIRING = event(
    ev.CONSENT_GRANTED,
    {
        "purpose": "marketing_partners",
        "channel": None,
        "expires_at": NOW + timedelta(days=365),
        "request_event_id": None,
        "evidence": None,
    },
)
WITHDRAW_ALL_EMAIL = event(
    ev.CONSENT_WITHDRAWN,
    {"purpose": None, "channel": "email", "reason": "too many mails"},
    notice_version=None,
    source=Source("unsubscribe_link", None, "list_unsubscribe"),
)
UNPUBLISHED = event(
    ev.CONSENT_GRANTED,
    {
        "purpose": "cookies_analytics",
        "channel": None,
        "expires_at": None,
        "request_event_id": None,
        "evidence": None,
    },
)


def receipt(e: Event, fmt: str, notice: Notice | None = NOTICE) -> dict[str, Any]:
    return build(e, fmt, catalogue=CATALOGUE, notice=notice, issuer=ISSUER, public_key="KEY")


P = pytest.param
#: (event, its notice, dotted path in the ISO record, expected value)
ISO_TABLE = [
    P(GRANT, NOTICE, "schema_version", "ISO/IEC TS 27560:2023", id="schema"),
    P(GRANT, NOTICE, "record_id", str(EVENT_ID), id="record-id"),
    P(GRANT, NOTICE, "subject_id", "cust-4711", id="subject"),
    P(GRANT, NOTICE, "jurisdiction", "FI", id="jurisdiction"),
    P(GRANT, NOTICE, "notice.version", "2026-01", id="notice-version"),
    P(GRANT, NOTICE, "notice.language", "fi", id="notice-language"),
    P(GRANT, NOTICE, "notice.url", NOTICE.url, id="notice-url"),
    P(GRANT, NOTICE, "purposes.0.dpv", "dpv:DirectMarketing", id="dpv-purpose"),
    P(GRANT, NOTICE, "purposes.0.legal_basis", "dpv:Consent", id="dpv-basis"),
    P(GRANT, NOTICE, "personal_data_categories", ["pd:EmailAddress"], id="pd"),
    P(GRANT, NOTICE, "collection_method.method", "double_opt_in", id="method"),
    P(GRANT, NOTICE, "event_time", "2026-01-01T12:00:00Z", id="event-time"),
    P(GRANT, NOTICE, "validity", {"until": None, "duration": None}, id="no-expiry"),
    P(GRANT, NOTICE, "expressed_by", {"type": "subject", "id": None}, id="expressed-by"),
    P(GRANT, NOTICE, "consent_type", "dpv:ExpressedConsent", id="consent-type"),
    P(GRANT, NOTICE, "state", "dpv:ConsentGiven", id="state-given"),
    P(GRANT, NOTICE, "controller.name", "Example Oy", id="controller"),
    P(EXPIRING, NOTICE, "validity.duration", "P365D", id="validity-duration"),
    P(EXPIRING, NOTICE, "purposes.0.channels", ["email", "sms", "phone", "post"],
      id="all-channels"),
    P(EXPIRING, NOTICE, "personal_data_categories",
      ["pd:EmailAddress", "pd:TelephoneNumber", "pd:PhysicalAddress"], id="pd-per-channel"),
    P(WITHDRAW_ALL_EMAIL, None, "state", "dpv:ConsentWithdrawn", id="state-withdrawn"),
    P(WITHDRAW_ALL_EMAIL, None, "withdrawal_method", "unsubscribe_link", id="withdrawal-method"),
    P(WITHDRAW_ALL_EMAIL, None, "withdrawal_reason", "too many mails", id="withdrawal-reason"),
    P(WITHDRAW_ALL_EMAIL, None, "notice.version", None, id="no-notice"),
    P(UNPUBLISHED, None, "notice", {"version": "2026-01", "language": None, "url": None,
                                    "text_sha256": None, "effective_from": None},
      id="unpublished-version"),
    P(UNPUBLISHED, None, "purposes.0.personal_data", ["pd:BrowsingBehavior"], id="pd-web"),
]  # fmt: skip

#: the same for the Kantara receipt
KANTARA_TABLE = [
    P(GRANT, NOTICE, "version", "KI-CR-v1.1.0", id="version"),
    P(GRANT, NOTICE, "jurisdiction", "FI", id="jurisdiction"),
    P(GRANT, NOTICE, "consentTimestamp", 1767268800, id="timestamp"),
    P(GRANT, NOTICE, "collectionMethod", "web form confirmed by double opt-in (footer-signup)",
      id="collection-method"),
    P(GRANT, NOTICE, "consentReceiptID", str(EVENT_ID), id="receipt-id"),
    P(GRANT, NOTICE, "publicKey", "KEY", id="public-key"),
    P(GRANT, NOTICE, "language", "fi", id="language"),
    P(GRANT, NOTICE, "piiPrincipalId", "cust-4711", id="principal"),
    P(GRANT, NOTICE, "piiControllers.0.piiController", "Example Oy", id="controller"),
    P(GRANT, NOTICE, "piiControllers.0.piiControllerUrl", ISSUER.contact, id="controller-url"),
    P(GRANT, NOTICE, "policyUrl", NOTICE.url, id="policy-url"),
    P(GRANT, NOTICE, "services.0.service", "Newsletter", id="service"),
    P(GRANT, NOTICE, "services.0.purposes.0.purposeCategory", ["6 - Marketing"], id="category"),
    P(GRANT, NOTICE, "services.0.purposes.0.consentType", "EXPLICIT", id="consent-type"),
    P(GRANT, NOTICE, "services.0.purposes.0.piiCategory", ["2 - Contact"], id="pii-category"),
    P(GRANT, NOTICE, "services.0.purposes.0.primaryPurpose", True, id="primary"),
    P(GRANT, NOTICE, "services.0.purposes.0.termination", "when withdrawn", id="termination"),
    P(GRANT, NOTICE, "services.0.purposes.0.thirdPartyDisclosure", True, id="third-party"),
    P(GRANT, NOTICE, "sensitive", False, id="sensitive"),
    P(GRANT, NOTICE, "spiCat", [], id="spi"),
    P(EXPIRING, NOTICE, "services.0.purposes.0.termination",
      "2027-01-01T12:00:00Z, or when withdrawn", id="termination-expiry"),
    P(WITHDRAW_ALL_EMAIL, None, "services.0.purposes.0.termination",
      "withdrawn 2026-01-01T12:00:00Z", id="termination-withdrawn"),
    P(WITHDRAW_ALL_EMAIL, None, "policyUrl", None, id="no-policy"),
    P(WITHDRAW_ALL_EMAIL, None, "language", "und", id="language-unknown"),
    P(UNPUBLISHED, None, "services.0.purposes.0.piiCategory", ["5 - Network/Service"],
      id="pii-web"),
]  # fmt: skip


def at(document: Any, path: str) -> Any:
    for part in path.split("."):
        document = document[int(part)] if isinstance(document, list) else document[part]
    return document


@pytest.mark.parametrize(("e", "notice", "path", "expected"), ISO_TABLE)
def test_iso27560_record(e: Event, notice: Notice | None, path: str, expected: Any) -> None:
    assert at(receipt(e, "iso27560", notice), path) == expected


@pytest.mark.parametrize(("e", "notice", "path", "expected"), KANTARA_TABLE)
def test_kantara_receipt(e: Event, notice: Notice | None, path: str, expected: Any) -> None:
    assert at(receipt(e, "kantara", notice), path) == expected


KANTARA_FIELDS = {
    "version", "jurisdiction", "consentTimestamp", "collectionMethod", "consentReceiptID",
    "publicKey", "language", "piiPrincipalId", "piiControllers", "policyUrl", "services",
    "sensitive", "spiCat",
}  # fmt: skip
KANTARA_PURPOSE_FIELDS = {
    "purpose", "purposeCategory", "consentType", "piiCategory", "primaryPurpose",
    "termination", "thirdPartyDisclosure", "thirdPartyName",
}  # fmt: skip


@pytest.mark.parametrize("e", [GRANT, EXPIRING, WITHDRAW_ALL_EMAIL, UNPUBLISHED])
def test_kantara_uses_exactly_the_specification_fields(e: Event) -> None:
    body = receipt(e, "kantara")
    assert set(body) == KANTARA_FIELDS
    for service in body["services"]:
        assert set(service) == {"service", "purposes"}
        for p in service["purposes"]:
            assert set(p) <= KANTARA_PURPOSE_FIELDS


def test_a_withdrawal_of_every_purpose_covers_those_on_its_channel() -> None:
    ids = [p["id"] for p in receipt(WITHDRAW_ALL_EMAIL, "iso27560")["purposes"]]
    assert ids == ["customer_communication", "research", "newsletter", "marketing_own",
                   "marketing_partners", "profiling"]  # fmt: skip
    everywhere = dataclasses.replace(
        WITHDRAW_ALL_EMAIL, data={**WITHDRAW_ALL_EMAIL.data, "channel": None}
    )
    assert "cookies_analytics" in [p["id"] for p in receipt(everywhere, "iso27560")["purposes"]]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("e", [GRANT, WITHDRAW_ALL_EMAIL])
def test_receipts_name_the_subject_by_pseudonym_only_and_repeat_exactly(fmt: str, e: Event) -> None:
    body = receipt(e, fmt)
    assert "@" not in json.dumps(body)
    assert body == receipt(e, fmt)


@pytest.mark.parametrize("type_", [ev.DIRECT_MARKETING_OBJECTED, ev.IDENTIFIER_LINKED])
def test_no_receipt_for_other_events(type_: str) -> None:
    with pytest.raises(NoReceipt):
        receipt(event(type_, {"channel": None}), "iso27560")


@pytest.mark.parametrize(
    ("span", "text"),
    [
        (timedelta(0), "PT0S"),
        (timedelta(days=30), "P30D"),
        (timedelta(days=1, hours=2), "P1DT2H"),
        (timedelta(minutes=90), "PT1H30M"),
        (timedelta(seconds=5), "PT5S"),
    ],
)
def test_iso_durations(span: timedelta, text: str) -> None:
    assert iso_duration(span) == text


RING = parse_key_ring("LEDGER_RECEIPT_KEYS", f"r2:{new_key()},r1:{new_key()}")


def test_a_jws_round_trip_through_the_key_set() -> None:
    body = receipt(GRANT, "kantara")
    token = signing.sign(body, RING)
    assert signing.verify(token, signing.jwks(RING)) == body
    assert token == signing.sign(body, RING)  # Ed25519 is deterministic
    header = json.loads(signing._unb64url(token.split(".")[0]))
    assert header == {"alg": "EdDSA", "kid": "r2", "typ": "JOSE"}


def test_an_old_key_still_verifies_after_a_rotation() -> None:
    before = KeyRing({"r1": RING.keys["r1"]}, "r1")
    token = signing.sign({"a": 1}, before)
    assert [k["kid"] for k in signing.jwks(RING)["keys"]] == ["r2", "r1"]
    assert signing.verify(token, signing.jwks(RING)) == {"a": 1}
    dropped = KeyRing({"r2": RING.keys["r2"]}, "r2")
    with pytest.raises(signing.SignatureError):
        signing.verify(token, signing.jwks(dropped))


def test_tampering_or_an_unknown_key_fails() -> None:
    token = signing.sign({"a": 1}, RING)
    head, payload, signature = token.split(".")
    forged = signing.b64url(signing.canonical_json({"a": 2}))
    with pytest.raises(signing.SignatureError, match="does not verify"):
        signing.verify(f"{head}.{forged}.{signature}", signing.jwks(RING))
    with pytest.raises(signing.SignatureError, match="no Ed25519 key"):
        signing.verify(token, {"keys": []})
    for broken in ("", "a.b", f"{head}.{payload}.!!", f"e30.{payload}.{signature}"):
        with pytest.raises(signing.SignatureError):
            signing.verify(broken, signing.jwks(RING))


def test_an_independent_library_verifies_with_the_key_set() -> None:
    body = receipt(GRANT, "iso27560")
    token = signing.sign(body, RING)
    keys = KeySet.import_key_set(signing.jwks(RING))  # type: ignore[arg-type]
    # RFC 9864 prefers the fully specified "Ed25519"; "EdDSA" is what verifiers know today
    with pytest.warns(SecurityWarning, match="EdDSA"):
        found = jose_jws.deserialize_compact(token, keys, algorithms=["EdDSA"])
    assert json.loads(found.payload) == body
    assert found.headers()["kid"] == "r2"


def _newsletter_v2() -> Catalogue:
    """The catalogue with newsletter's second version: a recipient outside the EU/EEA."""
    entry = {
        **CATALOGUE.purposes["newsletter"].as_json(),
        "recipients": [
            "processors under a written agreement (e-mail delivery)",
            {
                "name": "Mailer Inc.",
                "country": "US",
                "safeguard": "standard_contractual_clauses",
                "safeguard_note": "the 2021 clauses",
            },
        ],
    }
    entry = {k: v for k, v in entry.items() if k not in ("id", "version")}
    v2 = parse_purpose("newsletter", entry, version=2)
    return Catalogue({**CATALOGUE.purposes, "newsletter": v2})


def test_a_receipt_names_the_purpose_version_and_where_each_recipient_is() -> None:
    catalogue = _newsletter_v2()
    iso = build(
        GRANT, "iso27560", catalogue=catalogue, notice=NOTICE, issuer=ISSUER, public_key="K"
    )
    (purpose,) = iso["purposes"]
    assert purpose["version"] == 2
    assert purpose["recipients"] == [
        {
            "name": "processors under a written agreement (e-mail delivery)",
            "country": "FI",
            "safeguard": None,
            "safeguard_note": None,
        },
        {
            "name": "Mailer Inc.",
            "country": "US",
            "safeguard": "standard_contractual_clauses",
            "safeguard_note": "the 2021 clauses",
        },
    ]
    assert iso["recipients"] == purpose["recipients"]
    kantara = build(
        GRANT, "kantara", catalogue=catalogue, notice=NOTICE, issuer=ISSUER, public_key="K"
    )
    (entry,) = kantara["services"][0]["purposes"]
    assert entry["purpose"] == "Newsletter (purpose newsletter, version 2)"
    assert entry["thirdPartyName"] == (
        "processors under a written agreement (e-mail delivery) (FI);"
        " Mailer Inc. (US, standard_contractual_clauses: the 2021 clauses)"
    )


def test_a_withdrawal_of_every_purpose_lists_each_recipient_once() -> None:
    iso = receipt(WITHDRAW_ALL_EMAIL, "iso27560")
    names = [r["name"] for r in iso["recipients"]]
    assert len(names) == len(set(names))
    assert "the controller's group companies" in names
