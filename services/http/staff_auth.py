"""A staff session in place of a bearer key: the cookie the auditor's sign-in sets, checked on
every request of a route that accepts it (the route table's `session` column), with the key
behind it checked again against the key cache, so a revoked key ends its sessions at once.

The rules are services/identity/staff_sessions.py, the rows services/identity/session_store.py.
Design: docs/security/staff-sessions.md
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final
from urllib.parse import urlsplit

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from services.config import Settings, is_loopback
from services.http.app_state import api_keys_of, ledger_of
from services.http.body import whole_number
from services.http.problems import ProblemError, field_error, invalid
from services.http.rate_limit import RateLimiter
from services.identity import session_store
from services.identity.api_keys import AUDIT, Caller, permits
from services.identity.staff_sessions import (
    CSRF_FIELD,
    KEY_REVOKED,
    SESSION_COOKIE,
    Timeouts,
    csrf_matches,
    ended_because,
    well_formed,
)

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
#: the largest form the audit pages accept (a key, a search, a token)
MAX_FORM: Final = 4096
FORM_TYPE: Final = "application/x-www-form-urlencoded"


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class StaffSessions:
    """What the sign-in and the session check share in one API process: the timeouts, the
    sign-in attempts' limit per address, whether the cookie is Secure, and the clock (tests
    drive it to pass the timeouts without waiting)."""

    timeouts: Timeouts
    sign_ins: RateLimiter
    secure: bool
    clock: Clock

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock = utc_now) -> StaffSessions:
        host = urlsplit(settings.public_base_url).hostname or ""
        return cls(
            Timeouts(
                idle=timedelta(minutes=settings.staff_session_idle_min),
                absolute=timedelta(hours=settings.staff_session_max_h),
            ),
            RateLimiter(settings.staff_sign_in_rate_per_min),
            secure=not is_loopback(host),
            clock=clock,
        )

    def cookie(self, response: Response, name: str, value: str, max_age: int) -> None:
        """Set an HttpOnly, SameSite=Strict cookie for the whole origin (the pages link to
        downloads under /v1/), Secure unless the public URL is loopback."""
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path="/",
            secure=self.secure,
            httponly=True,
            samesite="strict",
        )

    def forget(self, response: Response, name: str) -> None:
        response.delete_cookie(name, path="/", secure=self.secure, httponly=True, samesite="strict")


def staff_sessions_of(request: Request) -> StaffSessions:
    sessions: StaffSessions = request.app.state.staff_sessions
    return sessions


def session_id_of(request: Request) -> str | None:
    """The session id the request's cookie carries, when it can be one."""
    value = request.cookies.get(SESSION_COOKIE)
    return value if well_formed(value) else None


def signed_in_session(request: Request) -> str | None:
    """The id of the live session the access check accepted for this request, if any."""
    found: str | None = getattr(request.state, "staff_session", None)
    return found


async def session_caller(request: Request) -> Caller | None:
    """The caller of the request's live session, or None: no cookie, an unknown or ended
    session (a timed-out one is ended now), or a key revoked or no longer in the cache."""
    session_id = session_id_of(request)
    if session_id is None:
        return None
    ledger = ledger_of(request)
    staff = staff_sessions_of(request)
    now = staff.clock()
    row = await session_store.find(ledger.pool, session_id)
    if row is None:
        return None
    ended = ended_because(row, now, staff.timeouts)
    key = api_keys_of(request).rows.get(row.key_id)
    if ended is None and (key is None or key.revoked_at is not None):
        ended = KEY_REVOKED
    if ended is None and key is not None and not permits(key.scopes, AUDIT):
        ended = KEY_REVOKED
    if ended is not None:
        if row.ended_at is None:
            await session_store.end(ledger.pool, session_id, now, ended)
            log.info("staff session of key %s ended: %s", row.key_id, ended)
        return None
    assert key is not None
    await session_store.touch(ledger.pool, session_id, now)
    request.state.staff_session = session_id
    return Caller(key.key_id, key.name, key.scopes)


async def form_fields(request: Request) -> dict[str, str]:
    """A small url-encoded form of the audit pages, one value a field; 4xx otherwise."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != FORM_TYPE:
        raise ProblemError(
            415, "Unsupported media type", f"send the form as {FORM_TYPE}", kind="unsupported"
        )
    declared = whole_number(request.headers.get("content-length", ""))
    if declared is None or declared > MAX_FORM:
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
