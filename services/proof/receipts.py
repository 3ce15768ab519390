"""Consent receipts: a grant or withdrawal as a consent record (pure; signing is elsewhere), in
the ISO/IEC TS 27560 and Kantara shapes.
The same concept as services/api/receipts.py, without HTTP.

Design: docs/developers/design/proof.md
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

from projections.outdating import Notice
from schemas import events as ev
from schemas.events import Event, rfc3339
from services.rules.catalogue import Catalogue, Purpose, Recipient

FORMATS: Final = ("iso27560", "kantara")
#: the event types a receipt exists for
RECEIPT_TYPES: Final = (ev.CONSENT_GRANTED, ev.CONSENT_WITHDRAWN)
ISO_SCHEMA_VERSION: Final = "ISO/IEC TS 27560:2023"
KANTARA_VERSION: Final = "KI-CR-v1.1.0"
VOCABULARIES: Final = {"dpv": "https://w3id.org/dpv#", "pd": "https://w3id.org/dpv/pd#"}

#: lawful basis -> DPV legal basis
DPV_BASES: Final = {
    "consent": "dpv:Consent",
    "legitimate_interest": "dpv:LegitimateInterest",
    "contract": "dpv:Contract",
    "legal_obligation": "dpv:LegalObligation",
}
#: channel -> the DPV personal data it needs
DPV_PERSONAL_DATA: Final = {
    "email": "pd:EmailAddress",
    "sms": "pd:TelephoneNumber",
    "phone": "pd:TelephoneNumber",
    "post": "pd:PhysicalAddress",
    "web": "pd:BrowsingBehavior",
}
#: channel -> Kantara PII category
KANTARA_PII: Final = {
    "email": "2 - Contact",
    "sms": "2 - Contact",
    "phone": "2 - Contact",
    "post": "2 - Contact",
    "web": "5 - Network/Service",
}
#: DPV purpose of the catalogue -> Kantara purpose category (Core Function otherwise)
KANTARA_PURPOSES: Final = {
    "CustomerRelationshipManagement": "1 - Core Function",
    "CommunicationForCustomerCare": "1 - Core Function",
    "ServiceProvision": "2 - Contracted Service",
    "PersonalisedAdvertising": "5 - Personalize Experience",
    "DirectMarketing": "6 - Marketing",
    "TargetedAdvertising": "6 - Marketing",
    "LegalCompliance": "12 - Legally Required Data Retention",
    "ResearchAndDevelopment": "16 - Improve Performance",
    "ServiceOptimisation": "16 - Improve Performance",
}
#: collection method -> how a receipt describes it
METHOD_TEXT: Final = {
    "form": "web form",
    "double_opt_in": "web form confirmed by double opt-in",
    "unsubscribe_link": "unsubscribe link",
    "preference_center": "preference centre",
    "support": "customer support",
    "import": "imported from an earlier system",
    "api": "recorded through the ledger's API",
    "banner": "cookie banner of a registered website",
    "gpc": "Global Privacy Control signal sent by the browser",
}
WITHDRAW_ANY_TIME: Final = (
    "at any time, as easily as it was given (GDPR Art. 7(3)): the unsubscribe link or the"
    " preference page in every message, or the controller's privacy contact"
)


@dataclass(frozen=True, slots=True)
class Issuer:
    """The controller, as the receipts name it (settings LEDGER_CONTROLLER_NAME,
    LEDGER_CONTROLLER_CONTACT, LEDGER_JURISDICTION)."""

    name: str
    contact: str
    jurisdiction: str


class NoReceipt(ValueError):
    """The event is not a grant or a withdrawal; a receipt exists for those only."""


def purposes_of(event: Event, catalogue: Catalogue) -> list[Purpose]:
    """The purposes the event is about: its purpose, or (a withdrawal of every purpose) every
    purpose consent can be given for, on the event's channel if it names one. A purpose no
    longer in the catalogue is named by id. `catalogue` is the one in force when the event was
    recorded, so the receipt names the purpose version the subject's choice was made under."""
    pid = event.data.get("purpose")
    if pid is None:
        channel = event.data.get("channel")
        return [
            p
            for p in catalogue.purposes.values()
            if p.basis in ("consent", "legitimate_interest")
            and (channel is None or channel in p.channels)
        ]
    found = catalogue.get(pid)
    return [found if found is not None else Purpose(pid, pid, "consent", False, ())]


def channels_of(event: Event, purpose: Purpose) -> list[str]:
    channel = event.data.get("channel")
    return [channel] if channel is not None else list(purpose.channels)


def build(
    event: Event,
    fmt: str,
    *,
    catalogue: Catalogue,
    notice: Notice | None,
    issuer: Issuer,
    public_key: str,
    context: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The receipt of `event` in `fmt`; `public_key` is the signing key's JWK `x` (Kantara's
    publicKey). `context` is the event's context opened (services/identity/context_sealing.py):
    the evidence of how the consent was expressed, in the collection method (ISO) or as
    `collectionContext` (Kantara); an event without one has neither."""
    if event.type not in RECEIPT_TYPES:
        raise NoReceipt(f"{event.type} is not a consent event")
    if fmt == "kantara":
        out = kantara(event, catalogue=catalogue, notice=notice, issuer=issuer, key=public_key)
        if context is not None:
            out["collectionContext"] = dict(context)
        return out
    if fmt == "iso27560":
        out = iso27560(event, catalogue=catalogue, notice=notice, issuer=issuer)
        if context is not None:
            out["collection_method"]["context"] = dict(context)
        return out
    raise ValueError(f"format {fmt!r}; accepted: {', '.join(FORMATS)}")


def iso27560(
    event: Event, *, catalogue: Catalogue, notice: Notice | None, issuer: Issuer
) -> dict[str, Any]:
    granted = event.type == ev.CONSENT_GRANTED
    purposes = purposes_of(event, catalogue)
    entries = [_iso_purpose(event, p) for p in purposes]
    expires = event.data.get("expires_at") if granted else None
    return {
        "schema_version": ISO_SCHEMA_VERSION,
        "record_id": str(event.event_id),
        "vocabularies": dict(VOCABULARIES),
        "subject_id": event.subject_id,
        "controller": {"name": issuer.name, "contact": issuer.contact or None},
        "jurisdiction": issuer.jurisdiction,
        "notice": _iso_notice(event.notice_version, notice),
        "purposes": entries,
        "personal_data_categories": _unique(c for e in entries for c in e["personal_data"]),
        "collection_method": {
            "method": event.source.method,
            "description": METHOD_TEXT.get(event.source.method, event.source.method),
            "system": event.source.system,
            "collection_point": event.source.collection_point,
            "confirmation": confirmation(event),
            "evidence": event.data.get("evidence"),
        },
        "event": {"id": str(event.event_id), "type": event.type},
        "event_time": rfc3339(event.occurred_at),
        "recorded_at": rfc3339(event.recorded_at),
        "validity": {
            "until": rfc3339(expires) if expires else None,
            "duration": iso_duration(expires - event.occurred_at) if expires else None,
        },
        "expressed_by": {"type": event.actor.type, "id": event.actor.id},
        "consent_type": "dpv:ExpressedConsent",
        "state": "dpv:ConsentGiven" if granted else "dpv:ConsentWithdrawn",
        "withdrawal_method": WITHDRAW_ANY_TIME if granted else event.source.method,
        "withdrawal_reason": None if granted else event.data.get("reason"),
        "recipients": _unique_recipients(r for e in entries for r in e["recipients"]),
    }


def confirmation(event: Event) -> dict[str, str] | None:
    """What a double-opt-in grant confirmed: the sign-up (ConsentRequested) and the
    confirmation itself (this grant); None for any other event."""
    request = event.data.get("request_event_id")
    if event.type != ev.CONSENT_GRANTED or request is None:
        return None
    return {
        "request_event_id": str(request),
        "confirmation_event_id": str(event.event_id),
        "confirmed_at": rfc3339(event.occurred_at),
    }


def _iso_purpose(event: Event, purpose: Purpose) -> dict[str, Any]:
    channels = channels_of(event, purpose)
    return {
        "id": purpose.id,
        "title": purpose.title,
        "dpv": f"dpv:{purpose.dpv}" if purpose.dpv else "dpv:Purpose",
        "legal_basis": DPV_BASES[purpose.basis],
        "channels": channels,
        "personal_data": _unique(DPV_PERSONAL_DATA[c] for c in channels),
        "recipients": [r.as_json() for r in purpose.recipients],
        "retention": purpose.retention or None,
        "version": purpose.version,
    }


def _iso_notice(version: str | None, notice: Notice | None) -> dict[str, Any]:
    return {
        "version": version,
        "language": notice.language if notice else None,
        "url": notice.url if notice else None,
        "text_sha256": notice.text_sha256 if notice else None,
        "effective_from": rfc3339(notice.effective_from) if notice else None,
    }


def kantara(
    event: Event, *, catalogue: Catalogue, notice: Notice | None, issuer: Issuer, key: str
) -> dict[str, Any]:
    controller: dict[str, Any] = {
        "piiController": issuer.name,
        "contact": issuer.contact or issuer.name,
        "address": {"addressCountry": issuer.jurisdiction},
    }
    if "@" in issuer.contact:
        controller["email"] = issuer.contact
    elif issuer.contact.startswith(("https://", "http://")):
        controller["piiControllerUrl"] = issuer.contact
    method = METHOD_TEXT.get(event.source.method, event.source.method)
    if event.source.collection_point:
        method = f"{method} ({event.source.collection_point})"
    confirmed = confirmation(event)
    if confirmed is not None:
        method = (
            f"{method}: request {confirmed['request_event_id']} confirmed"
            f" {confirmed['confirmed_at']} by {confirmed['confirmation_event_id']}"
        )
    return {
        "version": KANTARA_VERSION,
        "jurisdiction": issuer.jurisdiction,
        "consentTimestamp": int(event.occurred_at.timestamp()),
        "collectionMethod": method,
        "consentReceiptID": str(event.event_id),
        "publicKey": key,
        "language": (notice.language if notice else None) or "und",
        "piiPrincipalId": event.subject_id,
        "piiControllers": [controller],
        "policyUrl": notice.url if notice else None,
        "services": [
            {"service": p.title, "purposes": [_kantara_purpose(event, p)]}
            for p in purposes_of(event, catalogue)
        ],
        "sensitive": False,
        "spiCat": [],
    }


def _kantara_purpose(event: Event, purpose: Purpose) -> dict[str, Any]:
    out: dict[str, Any] = {
        "purpose": f"{purpose.title} (purpose {purpose.id}, version {purpose.version})",
        "purposeCategory": [KANTARA_PURPOSES.get(purpose.dpv, "1 - Core Function")],
        "consentType": "EXPLICIT",
        "piiCategory": _unique(KANTARA_PII[c] for c in channels_of(event, purpose)),
        "primaryPurpose": True,
        "termination": _termination(event),
        "thirdPartyDisclosure": bool(purpose.recipients),
    }
    if purpose.recipients:
        out["thirdPartyName"] = "; ".join(recipient_text(r) for r in purpose.recipients)
    return out


def recipient_text(recipient: Recipient) -> str:
    """A recipient in one line: its name, country and, for a transfer, the safeguard and what
    it rests on."""
    where = recipient.country
    if recipient.safeguard:
        where = f"{where}, {recipient.safeguard}"
    if recipient.safeguard_note:
        where = f"{where}: {recipient.safeguard_note}"
    return f"{recipient.name} ({where})"


def _termination(event: Event) -> str:
    if event.type == ev.CONSENT_WITHDRAWN:
        return f"withdrawn {rfc3339(event.occurred_at)}"
    expires = event.data.get("expires_at")
    if expires is not None:
        return f"{rfc3339(expires)}, or when withdrawn"
    return "when withdrawn"


def iso_duration(span: timedelta) -> str:
    """An ISO 8601 duration in days and time (P30DT12H); PT0S for nothing."""
    seconds = max(0, int(span.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    date = f"{days}D" if days else ""
    time = "".join(f"{n}{u}" for n, u in ((hours, "H"), (minutes, "M"), (secs, "S")) if n)
    if not date and not time:
        return "PT0S"
    return f"P{date}" + (f"T{time}" if time else "")


def _unique(items: Any) -> list[Any]:
    return list(dict.fromkeys(items))


def _unique_recipients(items: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each recipient once, in order of first mention."""
    seen: dict[tuple[Any, ...], dict[str, Any]] = {}
    for item in items:
        seen.setdefault(tuple(sorted(item.items())), item)
    return list(seen.values())


def answer(receipt: Mapping[str, Any], fmt: str, jws: str, kid: str) -> dict[str, Any]:
    """The HTTP answer: the receipt, its compact JWS and the key id to verify it with."""
    return {"format": fmt, "receipt": dict(receipt), "jws": jws, "kid": kid}
