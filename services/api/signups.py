"""POST /v1/subjects/{subject_id}/signups: a sign-up form's request for consent, recorded as
ConsentRequested, and the sealed confirmation link the sending system mails to the person.

Consent counts only once the person opens the link and presses its button (double opt-in,
services/web/confirmation.py); until then, and until the request expires, decisions answer
`confirmation_pending`. The link carries the request's event id as its link id, so a retried
sign-up with the same Idempotency-Key answers a link to the same request.

Design: docs/developers/design/double-opt-in.md
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse

from schemas import events as ev
from schemas.events import DOUBLE_OPT_IN, LANGUAGES, Actor, Event, Source, rfc3339
from services.api import openapi_responses as answers
from services.api.body_schemas import CONTEXT_SCHEMA, IDEMPOTENCY, SUBJECT
from services.api.commands import Common, Context
from services.api.identifiers import identifier_of, link_event, suppression_note
from services.api.write import created, idempotency_key
from services.bootstrap import Ledger
from services.config import Settings
from services.http.app_state import ledger_of
from services.http.appending import append_request
from services.http.body import Fields, check_subject_id, read_json_object
from services.http.event_context import asserted_context, context_data
from services.http.openapi_parts import PROBLEM, problem_answer, request_body
from services.http.problems import ProblemError
from services.identity import links
from services.ledger import idempotency
from services.rules.catalogue import Purpose

PATH: Final = "/v1/subjects/{subject_id}/signups"
#: where the confirmation page is served (services/web/confirmation.py)
CONFIRM_PREFIX: Final = "/c/"
#: the route name in request digests and metrics
ROUTE: Final = "signups"


def confirm_url(settings: Settings, token: str) -> str:
    return f"{settings.public_base_url}{CONFIRM_PREFIX}{token}"


def _consent_purpose(f: Fields, ledger: Ledger) -> Purpose | None:
    """A purpose a person can sign up for: marketing that rests on consent (the catalogue
    gives those their texts in every page language)."""
    pid = f.choice("purpose", ledger.catalogue.ids, required=True)
    purpose = ledger.catalogue.get(pid) if pid else None
    if purpose is not None and purpose.basis != "consent":
        f.error("purpose", f"{purpose.id!r} rests on {purpose.basis}; a sign-up asks for consent")
        return None
    if purpose is not None and not purpose.direct_marketing:
        f.error("purpose", f"{purpose.id!r} is not marketing one signs up to receive")
        return None
    return purpose


def _source(f: Fields) -> Source:
    src = f.object("source")
    system = src.text("system", max_len=200, free_text=True) if src else None
    point = src.text("collection_point", max_len=200, free_text=True) if src else None
    f.merge(src)
    return Source(method=DOUBLE_OPT_IN, system=system, collection_point=point)


async def create_signup(request: Request) -> JSONResponse:
    """Record ConsentRequested (and link the identifier, if given) and answer the link."""
    ledger = ledger_of(request)
    problem = ledger.settings.public_url_problem
    if problem:
        raise ProblemError(503, "Public URL not set", problem, kind="public-url-not-set")
    subject_id = check_subject_id(request.path_params["subject_id"])
    key = idempotency_key(request)
    body = await read_json_object(request)
    f = Fields(body)
    now = datetime.now(UTC)
    purpose = _consent_purpose(f, ledger)
    channel = f.choice("channel", purpose.channels if purpose else ev.CHANNELS, required=True)
    notice = f.text("notice_version", max_len=64, free_text=True)
    language = f.choice("language", LANGUAGES)
    source = _source(f)
    context = asserted_context(f)
    inner = f.object("identifier")
    found = identifier_of(ledger, inner) if inner is not None else None
    f.merge(inner)
    f.finish()
    assert purpose is not None and channel is not None
    ttl = timedelta(days=ledger.settings.signup_confirmation_days)
    requested = Event(
        type=ev.CONSENT_REQUESTED,
        event_id=uuid.uuid4(),
        subject_id=subject_id,
        occurred_at=now,
        recorded_at=now,
        source=source,
        actor=Actor("subject"),
        notice_version=notice,
        data={
            "purpose": purpose.id,
            "channel": channel,
            "expires_at": now + ttl,
            "language": language,
            **context_data(context),
        },
    )
    events = [requested]
    if found is not None:
        common = Common(Fields({}), Context(subject_id, now, ledger.catalogue))
        events.insert(0, await link_event(ledger, common, subject_id, found))
    # the value of an identifier is digested only as its blind index
    shown = {**body, "identifier": found[2].hex()} if found else body
    digest = idempotency.request_digest(ROUTE, subject_id, shown) if key is not None else b""
    appended = await append_request(ledger, events, key=key, digest=digest, subject_id=subject_id)
    # a replay answers the first request's event and expiry
    event = appended.events[-1]
    expires: datetime = event.data["expires_at"]
    token = links.issue(
        ledger.secrets.links,
        kind=links.CONFIRM,
        subject_id=subject_id,
        purpose=purpose.id,
        channel=channel,
        campaign_id=None,
        now=event.recorded_at,
        ttl=expires - event.recorded_at,
        link_id=event.event_id.bytes,
        address=found[2] if found else None,
        language=event.data["language"],
    )
    extra: dict[str, Any] = {
        "confirm_url": confirm_url(ledger.settings, token),
        "expires_at": rfc3339(expires.replace(microsecond=0)),
    }
    if found is not None:
        extra.update(await suppression_note(ledger, found) or {})
    return created(appended, extra)


OPERATION: Final[dict[str, Any]] = {
    "summary": "Record a sign-up (ConsentRequested) and issue its confirmation link",
    "description": "Consent counts once the person confirms through `confirm_url`; until"
    " `expires_at` decisions answer `confirmation_pending`.",
    "parameters": [SUBJECT, IDEMPOTENCY],
    "requestBody": request_body(
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["purpose", "channel"],
            "properties": {
                "purpose": {"type": "string"},
                "channel": {"type": "string", "enum": list(ev.CHANNELS)},
                "notice_version": {"type": "string"},
                "language": {"type": "string", "enum": list(LANGUAGES)},
                "source": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "system": {"type": "string"},
                        "collection_point": {"type": "string"},
                    },
                },
                "context": CONTEXT_SCHEMA,
                "identifier": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["type", "value"],
                    "properties": {
                        "type": {"type": "string", "enum": list(ev.IDENTIFIER_TYPES)},
                        "value": {"type": "string"},
                    },
                },
            },
        }
    ),
    "responses": {
        "201": answers.SIGNUP,
        "4XX": PROBLEM,
        "503": problem_answer("the log did not acknowledge, or LEDGER_PUBLIC_URL is not set"),
    },
}
