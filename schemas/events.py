"""The event contract in Python: one immutable `Event` envelope for every event type.

Type-specific fields live in `Event.data`, named exactly as in the Avro schema, so the codec,
the projections and the API share one vocabulary without a class per event type.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final
from uuid import UUID

CONSENT_GRANTED: Final = "ConsentGranted"
#: a sign-up asked for consent; it counts once confirmed through the ledger's link (double opt-in)
CONSENT_REQUESTED: Final = "ConsentRequested"
CONSENT_WITHDRAWN: Final = "ConsentWithdrawn"
DIRECT_MARKETING_OBJECTED: Final = "DirectMarketingObjected"
DIRECT_MARKETING_OBJECTION_LIFTED: Final = "DirectMarketingObjectionLifted"
PROCESSING_OBJECTED: Final = "ProcessingObjected"
PROCESSING_OBJECTION_RESOLVED: Final = "ProcessingObjectionResolved"
PROCESSING_RESTRICTED: Final = "ProcessingRestricted"
RESTRICTION_LIFTED: Final = "RestrictionLifted"
RELATIONSHIP_RECORDED: Final = "RelationshipRecorded"
RELATIONSHIP_ENDED: Final = "RelationshipEnded"
IDENTIFIER_LINKED: Final = "IdentifierLinked"
IDENTIFIER_UNLINKED: Final = "IdentifierUnlinked"
NOTICE_PUBLISHED: Final = "NoticePublished"
SUBJECT_ERASED: Final = "SubjectErased"
RIGHTS_REQUEST_RECEIVED: Final = "RightsRequestReceived"
RIGHTS_REQUEST_IDENTITY_VERIFIED: Final = "RightsRequestIdentityVerified"
RIGHTS_REQUEST_EXTENDED: Final = "RightsRequestExtended"
RIGHTS_REQUEST_COMPLETED: Final = "RightsRequestCompleted"
RIGHTS_REQUEST_REFUSED: Final = "RightsRequestRefused"
LINKS_REVOKED: Final = "LinksRevoked"
PURPOSE_DEFINED: Final = "PurposeDefined"
PURPOSE_RETIRED: Final = "PurposeRetired"

EVENT_TYPES: Final = (
    CONSENT_GRANTED,
    CONSENT_WITHDRAWN,
    DIRECT_MARKETING_OBJECTED,
    DIRECT_MARKETING_OBJECTION_LIFTED,
    PROCESSING_OBJECTED,
    PROCESSING_OBJECTION_RESOLVED,
    PROCESSING_RESTRICTED,
    RESTRICTION_LIFTED,
    RELATIONSHIP_RECORDED,
    RELATIONSHIP_ENDED,
    IDENTIFIER_LINKED,
    IDENTIFIER_UNLINKED,
    NOTICE_PUBLISHED,
    SUBJECT_ERASED,
    RIGHTS_REQUEST_RECEIVED,
    RIGHTS_REQUEST_IDENTITY_VERIFIED,
    RIGHTS_REQUEST_EXTENDED,
    RIGHTS_REQUEST_COMPLETED,
    RIGHTS_REQUEST_REFUSED,
    LINKS_REVOKED,
    CONSENT_REQUESTED,
    PURPOSE_DEFINED,
    PURPOSE_RETIRED,
)
#: the events of the purpose catalogue, keyed purpose/<id>: about no subject
PURPOSE_EVENTS: Final = (PURPOSE_DEFINED, PURPOSE_RETIRED)
#: the events keyed by something other than a subject (notice/<version>, purpose/<id>): no
#: subject's state, feed entry or export is about them
NOT_ABOUT_A_SUBJECT: Final = (NOTICE_PUBLISHED, *PURPOSE_EVENTS)
#: the events of a rights request (Art. 12(3)), all carrying its `request_id`
RIGHTS_REQUEST_EVENTS: Final = (
    RIGHTS_REQUEST_RECEIVED,
    RIGHTS_REQUEST_IDENTITY_VERIFIED,
    RIGHTS_REQUEST_EXTENDED,
    RIGHTS_REQUEST_COMPLETED,
    RIGHTS_REQUEST_REFUSED,
)

METHODS: Final = (
    "form",
    "double_opt_in",
    "unsubscribe_link",
    "preference_center",
    "support",
    "import",
    "api",
    "banner",
    "gpc",
)
#: the methods of what a website's banner records (POST /v1/collect/consents): a choice the
#: visitor made, and a withdrawal the browser's Global Privacy Control signal asked for; only
#: the event types of CONTEXT_EVENT_TYPES carry them (their older schemas lack the symbols)
BANNER: Final = "banner"
GPC: Final = "gpc"
BROWSER_METHODS: Final = (BANNER, GPC)
ACTOR_TYPES: Final = ("subject", "staff", "system")
CHANNELS: Final = ("email", "sms", "phone", "post", "web")
RESTRICTION_GROUNDS: Final = (
    "accuracy_contested",
    "unlawful_processing",
    "legal_claims",
    "objection_pending",
)
RELATIONSHIP_BASES: Final = ("contract", "legitimate_interest")
RESOLUTION_OUTCOMES: Final = ("upheld", "compelling_grounds", "withdrawn")
IDENTIFIER_TYPES: Final = ("email", "phone")
#: the method only the ledger's own confirmation of a sign-up records (POST .../signups)
DOUBLE_OPT_IN: Final = "double_opt_in"
#: the languages the public pages speak and a sign-up or a link may name (ISO 639-1), in the
#: order the pages' language switch lists them
LANGUAGES: Final = ("fi", "sv", "en")
#: GDPR Art. 17(1)(a)-(f): the ground an erasure rests on
ERASURE_GROUNDS: Final = (
    "no_longer_necessary",
    "consent_withdrawn",
    "objection",
    "unlawful_processing",
    "legal_obligation",
    "child_information_society",
)
#: the data-subject rights a request asks for (Art. 15-18, 20, 21)
REQUEST_KINDS: Final = (
    "access",
    "rectification",
    "erasure",
    "restriction",
    "objection",
    "portability",
)

MAX_SUBJECT_ID: Final = 128
SUBJECT_ID_RE: Final = re.compile(rf"[A-Za-z0-9._:-]{{1,{MAX_SUBJECT_ID}}}")
#: free text holding an e-mail address, `x@y.z`: the match starts one character before an
#: `@`, so a search costs one pass (`[^@]+@...` rescanned a long word from each of its starts)
EMAIL_LIKE_RE: Final = re.compile(r"[^\s@<>]@[^\s@<>]+\.[^\s@<>]")


def grant_data(
    purpose: str,
    channel: str | None,
    expires_at: datetime | None = None,
    *,
    request_event_id: UUID | None = None,
    evidence: str | None = None,
) -> dict[str, Any]:
    """The data of a ConsentGranted, every field of its newest schema spelled out (a decoded
    event carries them all, so an event built here equals itself read back)."""
    return {
        "purpose": purpose,
        "channel": channel,
        "expires_at": expires_at,
        "request_event_id": request_event_id,
        "evidence": evidence,
    }


def rfc3339(moment: datetime) -> str:
    """A UTC instant as RFC 3339 text with a `Z`, the form every answer and payload uses."""
    return moment.isoformat().replace("+00:00", "Z")


#: Kafka key (and envelope subject_id) of a NoticePublished event: `notice/<version>`. The
#: slash never occurs in a subject id, so a notice can never be mistaken for a subject.
NOTICE_KEY_PREFIX: Final = "notice/"


def notice_key(version: str) -> str:
    return NOTICE_KEY_PREFIX + version


#: Kafka key (and envelope subject_id) of a purpose's events: `purpose/<id>`. Like a notice's,
#: it can never be mistaken for a subject (docs/developers/design/purpose-catalogue.md).
PURPOSE_KEY_PREFIX: Final = "purpose/"


def purpose_key(purpose_id: str) -> str:
    return PURPOSE_KEY_PREFIX + purpose_id


#: path segment that stands for "the subject found by the `email=` or `phone=` query"
BY_IDENTIFIER: Final = "by-identifier"
_SUBJECT_ID_FORM: Final = f"must be 1-{MAX_SUBJECT_ID} characters from letters, digits and . _ : -"


def subject_id_problem(value: str) -> str | None:
    """Why `value` is not a pseudonymous subject id, or None when it is one. The length is
    checked first and every later test is linear, so a huge value costs no more than its
    length (an id's alphabet has no `@`: the e-mail test is only there for its message)."""
    if not 1 <= len(value) <= MAX_SUBJECT_ID:
        return f"is {len(value)} characters long; {_SUBJECT_ID_FORM}"
    if "@" in value:
        return "looks like an e-mail address; send the pseudonymous subject id instead"
    if not SUBJECT_ID_RE.fullmatch(value):
        return _SUBJECT_ID_FORM
    if value == BY_IDENTIFIER:
        return f"{BY_IDENTIFIER!r} is reserved for lookups by email= or phone="
    return None


@dataclass(frozen=True, slots=True)
class Source:
    """Where the event was collected: the system, the collection point and the method."""

    method: str = "api"
    system: str | None = None
    collection_point: str | None = None


@dataclass(frozen=True, slots=True)
class Actor:
    """Who expressed the event: the subject, a staff member or a system."""

    type: str = "subject"
    id: str | None = None


@dataclass(frozen=True, slots=True)
class Event:
    """One immutable ledger event; `data` holds the type-specific fields of its schema."""

    type: str
    event_id: UUID
    subject_id: str
    occurred_at: datetime
    recorded_at: datetime
    source: Source = field(default_factory=Source)
    actor: Actor = field(default_factory=Actor)
    notice_version: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)

    def envelope(self) -> dict[str, Any]:
        """The fields every schema starts with, laid out as the schemas lay them out."""
        return {
            "event_id": self.event_id,
            "subject_id": self.subject_id,
            "occurred_at": self.occurred_at,
            "recorded_at": self.recorded_at,
            "source": {
                "method": self.source.method,
                "system": self.source.system,
                "collection_point": self.source.collection_point,
            },
            "actor": {"type": self.actor.type, "id": self.actor.id},
            "notice_version": self.notice_version,
        }


#: the event types that carry a `context` (v2+ of their schemas; null in older records)
CONTEXT_EVENT_TYPES: Final = (
    CONSENT_GRANTED,
    CONSENT_REQUESTED,
    CONSENT_WITHDRAWN,
    DIRECT_MARKETING_OBJECTED,
    DIRECT_MARKETING_OBJECTION_LIFTED,
)
#: the fields of a context that a page captures or a caller asserts, in the schema's order
CONTEXT_FIELDS: Final = (
    "client_address",
    "user_agent",
    "page",
    "page_version",
    "language",
    "one_click",
)
#: the context fields that are personal data: stored only encrypted under the subject's key
PERSONAL_CONTEXT_FIELDS: Final = ("client_address", "user_agent")


@dataclass(frozen=True, slots=True)
class Context:
    """How an event was expressed, in clear: what a page captured or an API caller asserted.

    `captured` lists the fields the ledger captured itself, `asserted` those the caller sent.
    An event carries it sealed (services/identity/context_sealing.py): the client address and
    user agent encrypted under the subject's data key, so erasure shreds them."""

    client_address: str | None = None
    user_agent: str | None = None
    page: str | None = None
    page_version: str | None = None
    language: str | None = None
    one_click: bool = False
    captured: tuple[str, ...] = ()
    asserted: tuple[str, ...] = ()
