"""The confirmation page /c/{token}: the second step of a double opt-in.

GET shows what the person is about to confirm and changes nothing (mail scanners open links);
POST, the page's button, records ConsentGranted with method double_opt_in naming the request
(ConsentRequested) it confirms, once per request: a repeat records nothing and answers the same
page. An expired link answers 410, any other unusable one the pages' 404, and a link of an
erased subject the erased page (410), all recording nothing.

Design: docs/developers/design/double-opt-in.md
"""

from __future__ import annotations

import hmac
import logging
import time
import uuid
from datetime import UTC, datetime
from typing import Final

from starlette.requests import Request
from starlette.responses import Response

from projections import journal, link_revocations, notices, subject_state
from schemas import events as ev
from schemas.events import DOUBLE_OPT_IN, Actor, Context, Event, Source, subject_id_problem
from services.bootstrap import Ledger
from services.http.app_state import ledger_of
from services.http.appending import append_request
from services.http.applied import applied, ledger_token
from services.http.event_context import context_data, page_context
from services.identity import links
from services.identity.links import CONFIRM, LinkClaims, LinkError
from services.ledger import idempotency
from services.ledger.errors import SubjectErased
from services.ledger.partitioning import partition_for
from services.rules.catalogue import Purpose
from services.rules.decisions import decide
from services.web import pages
from services.web.page_errors import (
    bad_form,
    bad_link,
    chosen_language,
    html_errors,
    page_error,
    request_language,
)
from services.web.page_limits import CONFIRM_ROUTE
from services.web.page_responses import html_response
from services.web.page_versions import page_version
from services.web.pages import N_
from services.web.routes import SYSTEM, page_operation, read_form

log = logging.getLogger(__name__)

ROUTE: Final = CONFIRM_ROUTE
#: the collection point the confirmation's grant names
COLLECTION_POINT: Final = "confirmation_page"
#: the page's name in the grant's context (services/web/page_versions.py)
PAGE: Final = "confirmation"


EXPIRED: Final = (
    N_("This confirmation link has expired"),
    N_("Nothing was recorded. Sign up again to receive a new link."),
)
ERASED: Final = (
    N_("Your details have been erased"),
    N_(
        "Nothing was recorded: your details have been erased, so there is nothing to confirm."
        " Sign up again if you want to receive our messages."
    ),
)
NOT_YET: Final = (N_("Please try again"), N_("Nothing was recorded. Retry in a minute."))


async def _claims(ledger: Ledger, request: Request) -> LinkClaims:
    """The link's claims, or the expired, erased or unusable-link page."""
    try:
        claims = links.open_token(
            ledger.secrets.links, request.path_params["token"], datetime.now(UTC), kind=CONFIRM
        )
    except LinkError as exc:
        log.info("refused a link on /c/: %s", exc.why)
        raise (page_error(410, EXPIRED) if exc.why == "expired" else bad_link()) from None
    purpose = ledger.catalogue.get(claims.purpose or "")
    if (
        subject_id_problem(claims.subject_id) is not None
        or purpose is None
        or claims.channel not in purpose.channels
    ):
        log.info("refused a link on /c/: purpose or channel no longer offered")
        raise bad_link()
    request_language(request, claims.language)
    if await ledger.erased.get(claims.subject_id):
        raise page_error(410, ERASED)
    revocations = await link_revocations.load(ledger.pool, claims.subject_id)
    if link_revocations.is_revoked(CONFIRM, claims.address, claims.issued_at, revocations):
        log.info("refused a link on /c/: revoked")
        raise bad_link()
    return claims


async def _request(ledger: Ledger, claims: LinkClaims) -> Event:
    """The ConsentRequested the link confirms, as journaled. The sign-up was acknowledged
    before its link was handed out, so it is in the log: while the projection has not reached
    it, wait for the subject's partition to move on, at most the read wait; past it, a 503
    page (nothing recorded)."""
    event_id = uuid.UUID(claims.link_id)
    partition = partition_for(claims.subject_id, ledger.partitions)
    deadline = time.monotonic() + ledger.settings.read_wait_ms / 1000
    found = await journal.stored_record(ledger.pool, event_id)
    while found is None and (left := deadline - time.monotonic()) > 0:
        reached = ledger.progress.positions.get(partition, 0)
        await ledger.progress.wait_for(partition, reached + 1, left)
        found = await journal.stored_record(ledger.pool, event_id)
    if found is None:
        raise page_error(503, NOT_YET)
    event = ledger.codec.decode(found[1])
    if event.type != ev.CONSENT_REQUESTED or event.subject_id != claims.subject_id:
        log.warning("refused a link on /c/: its request is not a sign-up of its subject")
        raise bad_link()
    return event


def confirmation_grant(requested: Event, now: datetime, context: Context) -> Event:
    """The grant that confirms `requested`: same purpose, channel and notice, method
    double_opt_in, expressed by the subject, naming the request, with what the page saw."""
    data = requested.data
    return Event(
        type=ev.CONSENT_GRANTED,
        event_id=uuid.uuid4(),
        subject_id=requested.subject_id,
        occurred_at=now,
        recorded_at=now,
        source=Source(DOUBLE_OPT_IN, SYSTEM, COLLECTION_POINT),
        actor=Actor("subject"),
        notice_version=requested.notice_version,
        data={
            **ev.grant_data(data["purpose"], data["channel"], request_event_id=requested.event_id),
            **context_data(context),
        },
    )


def confirmation_key(ledger: Ledger, claims: LinkClaims) -> str:
    """The idempotency key of a sign-up's confirmation: one grant per request. It is keyed
    with the blind-index key, so no API caller, who knows the request's id, can claim it first
    and block the person's confirmation."""
    mac = hmac.new(
        ledger.secrets.blind_index_key, b"confirm/" + uuid.UUID(claims.link_id).bytes, "sha256"
    )
    return f"confirm:{mac.hexdigest()}"


#: how a confirmed sign-up stands now, in the page's words (templates/confirmed.html)
GIVEN: Final = "given"
BEING_APPLIED: Final = "being_applied"
ENDED_SINCE: Final = "ended_since"
HELD_BACK: Final = "held_back"
#: refusals that say the consent itself is gone since the confirmation
_ENDED: Final = frozenset(
    {"consent_withdrawn", "opted_out", "consent_expired", "consent_outdated", "no_consent"}
)


async def _standing(ledger: Ledger, claims: LinkClaims, purpose: Purpose) -> str | None:
    """How the confirmed sign-up stands now, from the decision rules (None: still pending, the
    confirmation is not in the projection)."""
    partition = partition_for(claims.subject_id, ledger.partitions)
    facts, _ = await subject_state.load(
        ledger.pool, claims.subject_id, ledger.settings.topic, partition
    )
    assert claims.channel is not None
    made = decide(
        facts, purpose, claims.channel, datetime.now(UTC), await notices.load(ledger.pool)
    )
    if made.allowed:
        return GIVEN
    if made.reason == "confirmation_pending":
        return None
    return ENDED_SINCE if made.reason in _ENDED else HELD_BACK


@html_errors
async def confirm(request: Request) -> Response:
    """GET shows the confirm button (or, once confirmed, how the subscription stands); POST
    records the confirmation once and says how it stands: a page never says more than the
    decision rules answer."""
    ledger = ledger_of(request)
    claims = await _claims(ledger, request)
    purpose = ledger.catalogue.get(claims.purpose or "")
    assert purpose is not None and claims.channel is not None
    language = chosen_language(request)
    key = confirmation_key(ledger, claims)

    def page(standing: str | None, headers: dict[str, str] | None = None) -> Response:
        controller = ledger.settings.controller_name
        if standing is None:
            html = pages.confirm_page(
                language, controller=controller, purpose=purpose, channel=claims.channel
            )
        else:
            html = pages.confirmed_page(
                language,
                controller=controller,
                purpose=purpose,
                channel=claims.channel,
                standing=standing,
            )
        return html_response(html, headers=headers)

    if request.method != "POST":
        stored = idempotency.key_hash(ledger.secrets.blind_index_key, key)
        if not await idempotency.is_claimed(ledger.pool, stored):
            return page(None)
        return page(await _standing(ledger, claims, purpose))
    if [v for k, v in await read_form(request) if k == "confirm"] != ["yes"]:
        raise bad_form()
    requested = await _request(ledger, claims)
    context = page_context(
        request,
        page=PAGE,
        page_version=page_version(PAGE),
        language=language.code,
    )
    grant = confirmation_grant(requested, datetime.now(UTC), context)
    digest = idempotency.request_digest(DOUBLE_OPT_IN, claims.subject_id, {"key": key})
    try:
        appended = await append_request(
            ledger, [grant], key=key, digest=digest, subject_id=claims.subject_id
        )
    except SubjectErased:
        raise page_error(410, ERASED) from None
    position = appended.positions[-1]
    standing = BEING_APPLIED
    if await applied(ledger, position):
        standing = await _standing(ledger, claims, purpose) or BEING_APPLIED
    return page(standing, {"Ledger-Token": ledger_token(position)})


PAGE_OPERATION: Final = page_operation("Sign-up confirmation page (changes nothing)")
POST_OPERATION: Final = page_operation(
    "Confirm a sign-up (double opt-in): form body confirm=yes; 410 once expired"
)
