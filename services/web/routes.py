"""The public pages: /u/{token} (unsubscribe) and /p/{token} (preferences), HTML for people
who arrive from a message: no cookies, no redirects, one 404 page for every unusable link.

Design: docs/developers/design/public-pages.md
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any, Final

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from projections import link_revocations, notices, subject_state
from projections.state import Fact, FactKey
from schemas.events import Actor, Context, Source, subject_id_problem
from services.bootstrap import Ledger
from services.http.app_state import ledger_of, page_limits_of
from services.http.appending import append_request
from services.http.applied import applied, ledger_token
from services.http.body import whole_number
from services.http.event_context import page_context
from services.http.openapi_parts import HTML_PAGE, html_page, path_param
from services.http.rate_limit import retry_after
from services.identity import links
from services.identity.links import PREFERENCES, UNSUBSCRIBE, LinkClaims, LinkError, LinkKind
from services.ledger import idempotency
from services.ledger.partitioning import partition_for
from services.ledger.tokens import TokenError, decode_token
from services.rules.catalogue import Purpose
from services.web import pages
from services.web.page_errors import (
    bad_form,
    bad_link,
    chosen_language,
    html_errors,
    request_language,
    too_many_requests,
)
from services.web.page_responses import html_response
from services.web.page_versions import page_version
from services.web.pages import N_, Message, PageLanguage
from services.web.preferences import (
    ALL_DIRECT_MARKETING,
    PREFERENCES_PAGE,
    SUBJECT,
    UNSUBSCRIBE_PAGE,
    Change,
    Choices,
    FormError,
    changes,
    choices_digest,
    current_choices,
    episode_key,
    groups,
    link_actor,
    link_key,
    one_click_post,
    parse_form,
    preference_source,
    request_key,
    to_events,
    unsubscribe_changes,
)

log = logging.getLogger(__name__)

MAX_FORM: Final = 16 * 1024
FORM_TYPES: Final = ("application/x-www-form-urlencoded", "multipart/form-data")
SYSTEM: Final = "consent-ledger"


def open_link(ledger: Ledger, token: str, kind: LinkKind) -> LinkClaims:
    """The claims of a link of `kind` within its lifetime (a preference link's is also capped
    by LEDGER_PREFERENCE_LINK_TTL_DAYS from its issue, whenever it was sealed), else LinkError.
    Pure but for the clock: revocations are checked by `_open`."""
    max_age = ledger.settings.link_lifetimes()[PREFERENCES] if kind == PREFERENCES else None
    return links.open_token(
        ledger.secrets.links, token, datetime.now(UTC), kind=kind, max_age=max_age
    )


async def _open(ledger: Ledger, request: Request, kind: LinkKind) -> LinkClaims:
    """The claims of the request's link, or the invalid-link page: a revoked link gets the
    same page as an altered one, and nothing is recorded."""
    token = request.path_params["token"]
    where = request.url.path[:3]
    try:
        claims = open_link(ledger, token, kind)
    except LinkError as exc:
        log.info("refused a link on %s: %s", where, exc.why)
        raise bad_link() from None
    purpose = ledger.catalogue.get(claims.purpose) if claims.purpose else None
    usable = subject_id_problem(claims.subject_id) is None
    if kind == UNSUBSCRIBE:
        usable = usable and _marketing_channel(purpose, claims.channel)
    if not usable:
        log.info("refused a link on %s: purpose or channel no longer offered", where)
        raise bad_link()
    revocations = await link_revocations.load(ledger.pool, claims.subject_id)
    if link_revocations.is_revoked(kind, claims.address, claims.issued_at, revocations):
        log.info("refused a link on %s: revoked", where)
        raise bad_link()
    request_language(request, claims.language)
    return claims


def _marketing_channel(purpose: Purpose | None, channel: str | None) -> bool:
    return purpose is not None and purpose.direct_marketing and channel in purpose.channels


async def _state(ledger: Ledger, subject_id: str) -> dict[FactKey, Fact]:
    partition = partition_for(subject_id, ledger.partitions)
    facts, _ = await subject_state.load(ledger.pool, subject_id, ledger.settings.topic, partition)
    return facts


async def read_form(request: Request) -> list[tuple[str, str]]:
    """The posted form's fields, url-encoded or multipart, small, without files."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in FORM_TYPES:
        raise bad_form(415)
    declared = whole_number(request.headers.get("content-length", ""))
    if declared is None or declared > MAX_FORM:
        raise bad_form(413)
    try:
        form = await request.form(max_files=0, max_fields=100, max_part_size=MAX_FORM)
    except HTTPException:
        raise bad_form() from None
    items = list(form.multi_items())
    if not all(isinstance(value, str) for _, value in items):
        raise bad_form()
    return [(name, str(value)) for name, value in items]


async def _record(
    ledger: Ledger,
    claims: LinkClaims,
    key: str,
    todo: list[Change],
    source: Source,
    context: Context,
    actor: Actor = SUBJECT,
) -> tuple[int, int]:
    """Append the events for `todo` once per key; where the last one landed."""
    events = to_events(
        todo,
        subject_id=claims.subject_id,
        now=datetime.now(UTC),
        source=source,
        campaign_id=claims.campaign_id,
        actor=actor,
        context=context,
    )
    digest = idempotency.request_digest(source.method, claims.subject_id, {"key": key})
    appended = await append_request(
        ledger, events, key=key, digest=digest, subject_id=claims.subject_id
    )
    return appended.positions[-1]


@html_errors
async def unsubscribe(request: Request) -> Response:
    """GET shows the question; POST (RFC 8058 one-click, or the page's button) records it."""
    ledger = ledger_of(request)
    claims = await _open(ledger, request, UNSUBSCRIBE)
    token = request.path_params["token"]
    purpose = ledger.catalogue.get(claims.purpose or "")
    assert purpose is not None and claims.channel is not None
    controller = ledger.settings.controller_name
    language = chosen_language(request)
    if request.method != "POST":
        html = pages.unsubscribe_page(
            language, controller=controller, purpose=purpose, channel=claims.channel
        )
        return html_response(html)
    items = await read_form(request)
    if [v for k, v in items if k == "List-Unsubscribe"] != ["One-Click"]:
        raise bad_form()
    scopes = [v for k, v in items if k == "scope"]
    if any(s != ALL_DIRECT_MARKETING for s in scopes):
        raise bad_form()
    try:
        one_click = one_click_post(items)
    except FormError:
        raise bad_form() from None
    everything = bool(scopes)
    context = page_context(
        request,
        page=UNSUBSCRIBE_PAGE,
        page_version=None if one_click else page_version(UNSUBSCRIBE_PAGE),
        language=language.code,
        one_click=one_click,
    )
    state = await _state(ledger, claims.subject_id)
    todo, done = unsubscribe_changes(state, purpose.id, claims.channel, everything)
    positions = [f.position for f in done]
    source = Source("unsubscribe_link", SYSTEM, "list_unsubscribe")
    for pending in todo:
        first = link_key(token, pending.change)
        stored = idempotency.key_hash(ledger.secrets.blind_index_key, first)
        earlier = await idempotency.logged_position(ledger.pool, stored)
        key = episode_key(first, earlier, pending.overrides)
        positions.append(await _record(ledger, claims, key, [pending.change], source, context))
    last = max(positions)
    now_applied = await applied(ledger, last)
    what = {
        "purpose": purpose.text(language.code).title,
        "channel": language.channel_phrase(claims.channel),
    }
    lines = [Message(NO_LONGER, what)]
    if everything:
        lines.append(Message(NO_MARKETING, {"controller": controller}))
    html = pages.done_page(language, controller=controller, lines=lines, applied=now_applied)
    return html_response(html, headers={"Ledger-Token": ledger_token(last)})


@html_errors
async def preferences(request: Request) -> Response:
    """GET shows every marketing choice; POST records what the form changed, nothing else,
    and only if the choices are still those the page showed."""
    ledger = ledger_of(request)
    if request.method != "POST":  # first: a revocation made a moment ago counts too
        await _wait_after(ledger, request.query_params.get("after"))
    claims = await _open(ledger, request, PREFERENCES)
    token = request.path_params["token"]
    language = chosen_language(request)
    if request.method != "POST":
        state = await _state(ledger, claims.subject_id)
        return _preferences_html(
            ledger,
            language,
            current_choices(state, ledger.catalogue, _now(), await notices.load(ledger.pool)),
        )
    try:
        form = parse_form(await read_form(request), ledger.catalogue)
    except FormError as exc:
        log.info("refused a preference form: %s", exc)
        raise bad_form() from None
    state = await _state(ledger, claims.subject_id)
    current = current_choices(state, ledger.catalogue, _now(), await notices.load(ledger.pool))
    todo = changes(current, form.wanted, ledger.catalogue.marketing_purposes())
    if not todo:
        return _preferences_html(ledger, language, current, saved=NOTHING_CHANGED)
    if form.shown != choices_digest(current):
        log.info("refused a preference form: filled in on a page that is out of date")
        return _preferences_html(ledger, language, current, alert=STALE_PAGE, status=409)
    waited = page_limits_of(request).save_wait(claims.subject_id, time.monotonic())
    if waited:
        log.info("refused a preference form: over the subject's saves a minute")
        return too_many_requests(ledger, language, retry_after(waited))
    source = preference_source(SYSTEM, claims.link_id)
    key = request_key(source.method, token, state, todo)
    actor = link_actor(claims.link_id)
    context = page_context(
        request,
        page=PREFERENCES_PAGE,
        page_version=page_version(PREFERENCES_PAGE),
        language=language.code,
    )
    position = await _record(ledger, claims, key, todo, source, context, actor)
    saved = SAVED if await applied(ledger, position) else SAVED_BEING_APPLIED
    return _preferences_html(
        ledger, language, form.wanted, saved=saved, headers={"Ledger-Token": ledger_token(position)}
    )


NO_LONGER: Final = N_("You will no longer receive %(purpose)s %(channel)s.")
NO_MARKETING: Final = N_("%(controller)s will send you no marketing at all, on any channel.")
NOTHING_CHANGED: Final = Message(N_("Nothing changed: your choices are as shown."))
SAVED: Final = Message(N_("Your choices are saved. They take effect at once."))
#: past the read wait: saved in the log, not yet applied everywhere (services/http/applied.py)
SAVED_BEING_APPLIED: Final = Message(
    N_("Your choices are saved and are being applied; this takes a moment, nothing else is needed.")
)
STALE_PAGE: Final = Message(
    N_(
        "Nothing was saved: your choices changed since you opened this page."
        " Check them below and save again."
    )
)


def _now() -> datetime:
    return datetime.now(UTC)


def _preferences_html(
    ledger: Ledger,
    language: PageLanguage,
    choices: Choices,
    *,
    saved: Message | None = None,
    alert: Message | None = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    html = pages.preferences_page(
        language,
        controller=ledger.settings.controller_name,
        groups=groups(ledger.catalogue, choices, language),
        objected=choices.objected,
        shown=choices_digest(choices),
        saved=saved,
        alert=alert,
    )
    return html_response(html, status, headers)


async def _wait_after(ledger: Ledger, after: str | None) -> None:
    """Show the page after a change made a moment ago (a link may pass a consistency token as
    `after`); a bad or unreached token only means the page may be a moment behind."""
    if not after or len(after) > 200:
        return
    try:
        partition, position = decode_token(after)
    except TokenError:
        return
    await ledger.progress.wait_for(partition, position, ledger.settings.read_wait_ms / 1000)


def page_operation(summary: str) -> dict[str, Any]:
    return {
        "summary": summary,
        "parameters": [path_param("token")],
        "responses": {"200": HTML_PAGE, "4XX": html_page("text/html")},
    }


UNSUBSCRIBE_PAGE_OPERATION: Final = page_operation("Unsubscribe page (changes nothing)")
ONE_CLICK_OPERATION: Final = page_operation(
    "One-click unsubscribe (RFC 8058): body List-Unsubscribe=One-Click"
)
PREFERENCES_PAGE_OPERATION: Final = page_operation("Preference page")
SAVE_PREFERENCES_OPERATION: Final = page_operation("Save the preference form")
