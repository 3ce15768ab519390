"""A staff session in place of a bearer key: the cookie the auditor's sign-in sets, checked on
every request of a route that accepts it (the route table's `session` column), with the key
behind it read again from `api_keys` in the same query, so a revoked key ends its sessions at
once in every API process.

The rules are services/identity/staff_sessions.py, the rows services/identity/session_store.py.
Design: docs/security/staff-sessions.md
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from services.config import Settings, is_loopback
from services.http.app_state import ledger_of
from services.http.body import whole_number
from services.http.failed_keys import FailedKeyLimit
from services.http.problems import ProblemError, field_error, invalid
from services.http.rate_limit import RateLimiter
from services.identity import session_store
from services.identity.api_keys import Caller
from services.identity.staff_sessions import (
    CSRF_FIELD,
    SESSION_COOKIE,
    Timeouts,
    cookie_name,
    csrf_matches,
    session_end,
    well_formed,
)

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
#: the largest form the audit pages accept (a key, a search, a token)
MAX_FORM: Final = 4096
FORM_TYPE: Final = "application/x-www-form-urlencoded"
#: Sec-Fetch-Site values a request with the session may carry (absent: an older browser)
OWN_SITE: Final = ("same-origin", "none")


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class StaffSessions:
    """What the sign-in and the session check share in one API process: the timeouts, the
    sign-in attempts' limit per address (attempts with a valid form token count; an address
    over the limit is held back, its refusals logged once) and the clock (tests drive it to
    pass the timeouts without waiting)."""

    timeouts: Timeouts
    sign_ins: FailedKeyLimit
    clock: Clock

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock = utc_now) -> StaffSessions:
        return cls(
            Timeouts(
                idle=timedelta(minutes=settings.staff_session_idle_min),
                absolute=timedelta(hours=settings.staff_session_max_h),
            ),
            FailedKeyLimit(RateLimiter(settings.staff_sign_in_rate_per_min)),
            clock=clock,
        )

    def cookie(
        self, request: Request, response: Response, name: str, value: str, max_age: int
    ) -> None:
        """Set an HttpOnly, SameSite=Strict cookie for the whole origin (the pages link to
        downloads under /v1/): Secure, and named `__Host-...`, when the request came over
        https."""
        secure = over_https(request)
        response.set_cookie(
            cookie_name(name, secure),
            value,
            max_age=max_age,
            path="/",
            secure=secure,
            httponly=True,
            samesite="strict",
        )

    def forget(self, request: Request, response: Response, name: str) -> None:
        secure = over_https(request)
        response.delete_cookie(
            cookie_name(name, secure), path="/", secure=secure, httponly=True, samesite="strict"
        )


def staff_sessions_of(request: Request) -> StaffSessions:
    sessions: StaffSessions = request.app.state.staff_sessions
    return sessions


def over_https(request: Request) -> bool:
    """Whether the request came over https: to the API itself, or to a proxy the API trusts
    (LEDGER_FORWARDED_ALLOW_IPS) that says so in X-Forwarded-Proto."""
    return request.url.scheme == "https"


def may_sign_in(request: Request) -> bool:
    """A session id may only travel over https, or over plain http on one machine."""
    return over_https(request) or is_loopback(request.client.host if request.client else "")


def cookie_of(request: Request, name: str) -> str | None:
    """The value of one of the staff cookies, under its name for the request's scheme."""
    return request.cookies.get(cookie_name(name, over_https(request)))


def carries_session(request: Request) -> bool:
    return cookie_of(request, SESSION_COOKIE) is not None


def session_id_of(request: Request) -> str | None:
    """The session id the request's cookie carries, when it can be one."""
    value = cookie_of(request, SESSION_COOKIE)
    return value if well_formed(value) else None


def fetched_from_elsewhere(request: Request) -> bool:
    """Whether the browser says another origin made the request (a sibling host on the same
    site sends SameSite=Strict cookies too); an older browser sends no Sec-Fetch-Site."""
    return request.headers.get("sec-fetch-site", "none") not in OWN_SITE


def signed_in_session(request: Request) -> str | None:
    """The id of the live session the access check accepted for this request, if any."""
    found: str | None = getattr(request.state, "staff_session", None)
    return found


async def session_caller(request: Request) -> Caller | None:
    """The caller of the request's live session, or None: no cookie, an unknown or ended
    session (a timed-out one is ended now), or its key revoked or without the audit scope,
    as the `api_keys` row says now (read with the session, in one round trip)."""
    session_id = session_id_of(request)
    if session_id is None:
        return None
    ledger = ledger_of(request)
    staff = staff_sessions_of(request)
    now = staff.clock()
    found = await session_store.check(ledger.pool, session_id, now, staff.timeouts)
    if found is None:
        return None
    row, key = found
    ended = session_end(row, key, now, staff.timeouts)
    if ended is not None:
        if row.ended_at is None:
            await session_store.end(ledger.pool, session_id, now, ended)
            log.info("staff session of key %s ended: %s", row.key_id, ended)
        return None
    request.state.staff_session = session_id
    return Caller(row.key_id, key.name, key.scopes)


async def form_fields(request: Request) -> dict[str, str]:
    """A small url-encoded form of the audit pages, one value a field; 4xx otherwise."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != FORM_TYPE:
        raise ProblemError(
            415, "Unsupported media type", f"send the form as {FORM_TYPE}", kind="unsupported"
        )
    length = request.headers.get("content-length")
    if length is None:
        raise ProblemError(411, "Length required", "send the form with a Content-Length")
    declared = whole_number(length)
    if declared is None:
        raise invalid([field_error("Content-Length", "must be a whole number of bytes")], 400)
    if declared > MAX_FORM:
        raise ProblemError(413, "Form too large", f"a form of at most {MAX_FORM} bytes")
    try:
        form = await request.form(max_files=0, max_fields=10, max_part_size=MAX_FORM)
    except HTTPException:
        raise ProblemError(400, "Bad form", "the form could not be read") from None
    out: dict[str, str] = {}
    for name, value in form.multi_items():
        if not isinstance(value, str) or name in out:
            raise invalid([field_error(name, "must be given once, as text")], 400)
        out[name] = value
    return out


async def require_csrf(request: Request, session_id: str) -> dict[str, str]:
    """The posted form, refused with 403 unless it carries the session's CSRF token."""
    fields = await form_fields(request)
    if not csrf_matches(session_id, fields.get(CSRF_FIELD)):
        log.warning("staff form refused on %s: CSRF token missing or wrong", request.url.path)
        raise ProblemError(
            403,
            "Forbidden",
            f"{CSRF_FIELD}: missing or not this session's; reload the page and post its form",
            errors=[field_error(CSRF_FIELD, "missing or not this session's")],
            kind="csrf-refused",
        )
    return fields
