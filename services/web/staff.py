"""The auditor's home page (/audit/): the sign-in form without a session, else the open rights
requests and the search; signing in and out. A session stands in for the API key on the audit
pages and their downloads (services/http/staff_auth.py).

Design: docs/security/staff-sessions.md
"""

from __future__ import annotations

import hmac
import logging
from datetime import date
from typing import Any, Final
from urllib.parse import quote
from uuid import UUID

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from projections import chain_store, requests
from services.http.access_logging import record_read, record_reads
from services.http.app_state import api_keys_of, caller_of, ledger_of
from services.http.body import Fields
from services.http.openapi_parts import html_page
from services.http.problems import field_error, invalid
from services.http.rate_limit import client_key, retry_after
from services.http.staff_auth import (
    carries_session,
    cookie_of,
    form_fields,
    may_sign_in,
    session_id_of,
    signed_in_session,
    staff_sessions_of,
)
from services.http.subjects import UnknownIdentifier, subject_from_query
from services.identity import session_store
from services.identity.api_key_store import KeysUnavailable
from services.identity.api_keys import AUDIT, MAX_KEY, KeyRefused, permits
from services.identity.staff_sessions import (
    CSRF_FIELD,
    SESSION_COOKIE,
    SIGN_IN_COOKIE,
    SIGNED_OUT,
    csrf_matches,
    csrf_token,
    new_token,
    well_formed,
)
from services.web.audit import audit_errors
from services.web.page_responses import PageError, html_response
from services.web.staff_view import home_page, request_rows, sign_in_page

log = logging.getLogger(__name__)

HOME_PATH: Final = "/audit/"
SIGN_IN_PATH: Final = "/audit/sign-in"
SIGN_OUT_PATH: Final = "/audit/sign-out"
SEARCH_PATH: Final = "/audit/search"
#: the open requests the home page lists, due first (the counts cover all)
LISTED: Final = 200
#: what a search may be by: the form's `by` field
SEARCH_BY: Final = ("email", "phone", "subject_id")
MAX_SEARCH: Final = 320
#: seconds the sign-in form's token lives in its cookie
SIGN_IN_FORM_S: Final = 3600
_WORDS: Final = {"email": "e-mail address", "phone": "phone number", "subject_id": "subject id"}


def _address(request: Request) -> str:
    return request.client.host if request.client else ""


def _needs_https(request: Request) -> PageError:
    log.warning("staff sign-in refused from %s: plain http from another machine", _address(request))
    return PageError(
        403,
        "Sign-in needs https",
        "Staff sign-in needs https (or, on the ledger's own machine, its loopback address):"
        " open the auditor's pages at their https address.",
    )


def _sign_in_form(
    request: Request, notice: str | None = None, status: int = 200, *, key_refused: bool = False
) -> Response:
    """The form, with a fresh token doubled in a cookie (a forged sign-in cannot know it)."""
    ledger = ledger_of(request)
    staff = staff_sessions_of(request)
    token = new_token()
    html = sign_in_page(
        controller=ledger.settings.controller_name,
        csrf_token=token,
        notice=notice,
        idle_minutes=ledger.settings.staff_session_idle_min,
        max_hours=ledger.settings.staff_session_max_h,
        key_refused=key_refused,
    )
    response = html_response(html, status)
    staff.cookie(request, response, SIGN_IN_COOKIE, token, SIGN_IN_FORM_S)
    if status == 200 and carries_session(request):
        staff.forget(request, response, SESSION_COOKIE)
    return response


@audit_errors
async def home(request: Request) -> Response:
    """GET /audit/: the sign-in form without a key or session, else the open requests."""
    ledger = ledger_of(request)
    caller = caller_of(request)
    if caller is None:
        if not may_sign_in(request):
            raise _needs_https(request)
        ended = carries_session(request)  # the guard found no live session behind it
        return _sign_in_form(request, "Your session has ended; sign in again." if ended else None)
    if not permits(caller.scopes, AUDIT):
        raise PageError(403, "Not allowed", "This page needs an API key with the audit scope.")
    today = staff_sessions_of(request).clock().date()
    found = await requests.page(ledger.pool, "open", today, (date.min, UUID(int=0)), LISTED)
    open_count, overdue_count = await requests.counts(ledger.pool, today)
    await record_reads(request, sorted({r.subject_id for r in found}))
    if not found:
        # the access log files reads per subject: a view naming nobody is kept here instead
        log.info("staff home page listed no open request (key %s)", caller.key_id)
    session = signed_in_session(request)
    html = home_page(
        controller=ledger.settings.controller_name,
        rows=request_rows(found, today),
        open_count=open_count,
        overdue_count=overdue_count,
        today=today,
        csrf_token=csrf_token(session) if session else None,
        key_id=caller.key_id,
        key_name=caller.name,
    )
    return html_response(html)


@audit_errors
async def sign_in(request: Request) -> Response:
    """POST /audit/sign-in: a key of scope audit (or admin) starts a session; 303 to /audit/.
    Only over https or from loopback; the form's token is checked first, so only attempts
    from the form itself count against the address's limit (a cross-site post cannot lock an
    office out)."""
    ledger = ledger_of(request)
    staff = staff_sessions_of(request)
    address = _address(request)
    if not may_sign_in(request):
        raise _needs_https(request)
    fields = await form_fields(request)
    doubled, presented = cookie_of(request, SIGN_IN_COOKIE), fields.get(CSRF_FIELD)
    if not (well_formed(doubled) and well_formed(presented)) or not hmac.compare_digest(
        str(doubled), str(presented)
    ):
        log.warning("staff sign-in refused from %s: the form's token is missing or wrong", address)
        return _sign_in_form(request, "The sign-in form had expired; please sign in again.", 403)
    at = staff.clock().timestamp()
    wait = staff.sign_ins.wait(client_key(address), at)  # held back: not counted nor logged
    if not wait:
        wait = staff.sign_ins.failed(client_key(address), at)  # counts this attempt
        if wait:
            log.warning("staff sign-in refused from %s: too many attempts", address)
    if wait:
        seconds = retry_after(wait)
        raise PageError(
            429,
            "Too many sign-in attempts",
            f"Too many sign-in attempts from this address; try again in {seconds} seconds.",
            {"Retry-After": str(seconds)},
        )
    key = fields.get("key", "").strip()
    if not key or len(key) > MAX_KEY:
        notice = f"Enter an API key (at most {MAX_KEY} characters)."
        return _sign_in_form(request, notice, 422, key_refused=True)
    try:
        caller = api_keys_of(request).authenticate(f"Bearer {key}")
    except KeyRefused as exc:
        named = f" (key {exc.key_id})" if exc.key_id else ""
        log.warning("staff sign-in refused from %s%s: %s", address, named, exc.reason)
        return _sign_in_form(request, "The key was not accepted.", 401, key_refused=True)
    except KeysUnavailable:
        raise PageError(503, "Please try again", "The API keys cannot be checked now.") from None
    if not permits(caller.scopes, AUDIT):
        log.warning(
            "staff sign-in refused from %s (key %s): no audit scope", address, caller.key_id
        )
        notice = "This key has neither the audit nor the admin scope."
        return _sign_in_form(request, notice, 403, key_refused=True)
    carried = session_id_of(request)
    if carried is not None:  # the browser's earlier session ends: one session a browser
        await session_store.end(ledger.pool, carried, staff.clock(), SIGNED_OUT)
    session_id = new_token()
    await session_store.start(ledger.pool, session_id, caller.key_id, staff.clock(), address)
    log.info("staff sign-in of key %s (%s) from %s", caller.key_id, caller.name, address)
    response = RedirectResponse("./", 303)
    lifetime = int(staff.timeouts.absolute.total_seconds())
    staff.cookie(request, response, SESSION_COOKIE, session_id, lifetime)
    staff.forget(request, response, SIGN_IN_COOKIE)
    return response


@audit_errors
async def sign_out(request: Request) -> Response:
    """POST /audit/sign-out: ends the session (its form's CSRF token required); 303 to /audit/.
    Without a session cookie there is nothing to end: 303 to the sign-in form."""
    ledger = ledger_of(request)
    staff = staff_sessions_of(request)
    session_id = session_id_of(request)
    if session_id is None:
        return RedirectResponse("./", 303)
    fields = await form_fields(request)
    if not csrf_matches(session_id, fields.get(CSRF_FIELD)):
        log.warning("staff sign-out refused from %s: CSRF token wrong", _address(request))
        raise PageError(
            403,
            "Not signed out",
            "This page is from an earlier session: go back to the auditor's pages, then sign"
            " out with the button there.",
        )
    row = await session_store.find(ledger.pool, session_id)
    await session_store.end(ledger.pool, session_id, staff.clock(), SIGNED_OUT)
    if row is not None:
        log.info("staff session of key %s ended: %s", row.key_id, SIGNED_OUT)
    response = RedirectResponse("./", 303)
    staff.forget(request, response, SESSION_COOKIE)
    return response


@audit_errors
async def search(request: Request) -> Response:
    """POST /audit/search: the subject of a subject id, or of an e-mail address or phone
    number linked now (exact, through the blind index); logged as a read of that subject,
    then 303 to its page, so the address never reaches a URL."""
    ledger = ledger_of(request)
    fields = await form_fields(request)
    by, value = fields.get("by", ""), fields.get("value", "")
    if by not in SEARCH_BY:
        raise invalid([field_error("by", "must be one of the form's choices", list(SEARCH_BY))])
    if not value.strip() or len(value) > MAX_SEARCH:
        raise invalid([field_error("value", f"must be 1-{MAX_SEARCH} characters")])
    f = Fields({by: value.strip()})
    found: str | None
    try:
        found = await subject_from_query(ledger, f)
    except UnknownIdentifier:
        found = None
    f.finish()
    if found is not None and by == "subject_id":
        # a subject id is no lookup: name one the ledger holds nothing of, and it found nobody
        found = found if await chain_store.subject_known(ledger.pool, found) else None
    if found is None:
        caller = caller_of(request)
        log.info("staff search by %s found no subject (key %s)", by, caller and caller.key_id)
        raise PageError(404, "No subject found", f"No subject is known by this {_WORDS[by]} now.")
    subject_id = found
    await record_read(request, subject_id)
    return RedirectResponse(f"subjects/{quote(subject_id, safe='')}", 303)


def _form_operation(summary: str, answers: dict[str, Any]) -> dict[str, Any]:
    body = {"content": {"application/x-www-form-urlencoded": {"schema": {"type": "object"}}}}
    return {"summary": summary, "requestBody": body, "responses": answers}


_REDIRECT: Final = {"description": "see /audit/ (or the subject's page)"}
HOME_OPERATION: Final[dict[str, Any]] = {
    "summary": "Auditor's home (internal): the sign-in form, or the open rights requests and"
    " the search",
    "responses": {"200": html_page("the page"), "503": html_page("the ledger is unavailable")},
}
SIGN_IN_OPERATION: Final = _form_operation(
    "Sign in to the auditor's pages with an API key of scope audit (form: key, csrf_token)",
    {"303": _REDIRECT, "4XX": html_page("the sign-in form again, saying why")},
)
SIGN_OUT_OPERATION: Final = _form_operation(
    "End the staff session (form: csrf_token)",
    {"303": _REDIRECT, "4XX": html_page("the sign-out was refused")},
)
SEARCH_OPERATION: Final = _form_operation(
    "Find a subject by subject id, e-mail address or phone number (form: by, value,"
    " csrf_token with a session)",
    {"303": _REDIRECT, "404": html_page("no subject found"), "4XX": html_page("refused")},
)
