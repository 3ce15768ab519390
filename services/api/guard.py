"""Every route behind its access check: a key with the route's scope, or the public pages'
rate limit (the route table, services/api/route_table.py, says which), checked before the handler
reads anything and without a database round trip.

Design: docs/developers/design/http-layer.md
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Iterable
from functools import partial

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from services.api.access import SESSION_ROUTES, required_access
from services.api.site_guard import SiteLimits, guard_site
from services.config import Settings
from services.http.app_state import PageLimiter, api_keys_of, caller_of, set_caller
from services.http.failed_keys import FailedKeyLimit
from services.http.problems import ProblemError, unavailable
from services.http.rate_limit import RateLimiter, client_key, retry_after
from services.http.route_spec import (
    ANY_KEY,
    KEY_OPTIONAL,
    PUBLIC,
    SITE_KEY,
    TOKEN_PAGE,
    Endpoint,
    GuardedRoute,
)
from services.http.staff_auth import (
    carries_session,
    fetched_from_elsewhere,
    require_csrf,
    session_caller,
    signed_in_session,
    staff_sessions_of,
)
from services.identity.api_key_store import KeysUnavailable
from services.identity.api_keys import KeyRefused, bearer_key, permits, unguessable
from services.identity.site_keys import is_site_key
from services.identity.staff_sessions import SESSION_COOKIE
from services.web.staff_pages import home_href, staff_error

log = logging.getLogger(__name__)

REALM = 'Bearer realm="consent-ledger"'


def _unauthorized(reason: str) -> ProblemError:
    return ProblemError(
        401,
        "Unauthorized",
        reason,
        headers={"WWW-Authenticate": f'{REALM}, error="invalid_token"'},
        kind="unauthorized",
    )


def _forbidden(scope: str) -> ProblemError:
    return ProblemError(
        403,
        "Forbidden",
        f"this route needs an API key with the {scope} scope (or admin)",
        headers={"WWW-Authenticate": f'{REALM}, error="insufficient_scope", scope="{scope}"'},
        kind="forbidden",
    )


def _site_key_refused() -> ProblemError:
    return ProblemError(
        403,
        "Forbidden",
        "a site key (pk_...) can only record and read a visitor's choices through"
        " /v1/collect/consents; this route needs an API key",
        headers={"WWW-Authenticate": f'{REALM}, error="insufficient_scope"'},
        kind="forbidden",
    )


def _presents_site_key(header: str | None) -> bool:
    token = (header or "").strip().partition(" ")[2].strip()
    return is_site_key(token)


def _presents_key(header: str | None) -> bool:
    """Whether the request presents an API key: an `Authorization: Bearer` header. Another
    scheme (an auth proxy's Basic) leaves a staff session in force."""
    return header is not None and header.strip().partition(" ")[0].lower() == "bearer"


def _too_many_refused(seconds: int) -> ProblemError:
    return ProblemError(
        429,
        "Too many requests",
        f"too many refused API keys from this address; retry in {seconds} s",
        headers={"Retry-After": str(seconds)},
        kind="too-many-requests",
    )


def _refused(method: str, path: str, address: str, exc: KeyRefused) -> None:
    """The WARNING of a refused key: route template, client address and why; the key id only
    when it names a stored key, never anything of the presented secret."""
    named = f" (key {exc.key_id})" if exc.key_id else ""
    log.warning("API key refused on %s %s from %s%s: %s", method, path, address, named, exc.reason)


def _guard(
    endpoint: Endpoint,
    path: str,
    settings: Settings,
    limits: PageLimiter,
    failures: FailedKeyLimit,
    site_limits: SiteLimits,
) -> Endpoint:
    async def guarded(request: Request) -> Response:
        needed = required_access(
            request.method,
            path,
            request.query_params.keys(),
            metrics_public=settings.metrics_public,
        )
        if needed == PUBLIC:
            return await endpoint(request)
        if needed == TOKEN_PAGE:
            refused = limits.refuse(request, path, time.monotonic())
            return refused or await endpoint(request)
        if needed == SITE_KEY:
            return await guard_site(request, endpoint, site_limits)
        header = request.headers.get("authorization")
        if _presents_site_key(header):
            raise _site_key_refused()
        verb = "GET" if request.method == "HEAD" else request.method
        keyless = not _presents_key(header)
        if keyless and carries_session(request) and (verb, path) in SESSION_ROUTES:
            return await _by_session(request, endpoint, path, needed)
        signed_out_page = path.startswith("/audit/") and needed != KEY_OPTIONAL
        if keyless and signed_out_page and (verb, path) in SESSION_ROUTES:
            return _to_sign_in(request)  # a browser with neither key nor session
        if needed == KEY_OPTIONAL and keyless:
            set_caller(request, None)
            return await endpoint(request)
        keys = api_keys_of(request)
        host = request.client.host if request.client else ""
        # a client's key (its /64) costs a few microseconds: only while someone is held back
        blocked = failures.wait(client_key(host), time.monotonic()) if len(failures) else 0.0
        try:
            caller = keys.authenticate(header)
        except KeyRefused as exc:
            if blocked:  # not counted, nor logged again: the address is held back already
                raise _too_many_refused(retry_after(blocked)) from None
            _refused(request.method, path, host, exc)
            blocked = failures.failed(client_key(host), time.monotonic())
            if blocked:
                raise _too_many_refused(retry_after(blocked)) from None
            raise _unauthorized(exc.reason) from None
        except KeysUnavailable as exc:
            raise unavailable(str(exc), 2) from None
        if blocked and not unguessable(bearer_key(header)):
            # a held-back address learns nothing about a key that could be guessed: right or
            # wrong, the answer is the same 429
            raise _too_many_refused(retry_after(blocked))
        if needed not in (ANY_KEY, KEY_OPTIONAL) and not permits(caller.scopes, needed):
            # a POST twin may ask in its body for what another scope gives (`at`: audit); its
            # handler checks the body's own level first (services/http/subjects.py)
            other = (
                required_access(request.method, path, ("at",))
                if request.method == "POST"
                else needed
            )
            if not permits(caller.scopes, other):
                raise _forbidden(needed)
        set_caller(request, caller)
        return await endpoint(request)

    return guarded


def _to_sign_in(request: Request) -> Response:
    """303 from an audit page to the sign-in form at /audit/ (relative: a path prefix in front
    of the ledger keeps working)."""
    return RedirectResponse(home_href(request.url.path), 303)


async def _by_session(request: Request, endpoint: Endpoint, path: str, needed: str) -> Response:
    """A request carrying a staff session's cookie and no key: the session's key stands in
    (a form posted with it must carry the session's CSRF token). A session that has ended
    sends a page back to the sign-in form, a form posted with it gets a page saying so with a
    link back, and a download gets 401. A request another origin made is refused."""
    page = path.startswith("/audit/")
    if fetched_from_elsewhere(request):
        log.warning("staff session refused on %s: requested from another origin", path)
        detail = "the auditor's pages accept the session only from their own links"
        if page:
            return staff_error(request, 403, "Opened from another site", detail + ".")
        raise ProblemError(403, "Forbidden", detail, kind="forbidden")
    caller = await session_caller(request)
    if caller is None:
        if needed == KEY_OPTIONAL:  # the sign-in page itself
            set_caller(request, None)
            return await endpoint(request)
        if request.method in ("GET", "HEAD") and page:
            answer: Response = _to_sign_in(request)
        elif page:
            answer = staff_error(
                request, 401, "Your session has ended", "Sign in again, then repeat the search."
            )
        else:
            problem = _unauthorized("the staff session has ended; sign in again at /audit/")
            answer = problem.response(path)
        staff_sessions_of(request).forget(request, answer, SESSION_COOKIE)
        return answer
    if needed not in (ANY_KEY, KEY_OPTIONAL) and not permits(caller.scopes, needed):
        raise _forbidden(needed)
    if request.method not in ("GET", "HEAD"):
        try:
            await require_csrf(request, signed_in_session(request) or "")
        except ProblemError as exc:
            if not page:
                raise
            why = "This form is not from this session (signed in again elsewhere, or expired)."
            words = why if exc.status == 403 else exc.detail
            return staff_error(request, exc.status, "The form was refused", words)
    set_caller(request, caller)
    return await endpoint(request)


def protect(routes: Iterable[Route], settings: Settings, limits: PageLimiter) -> list[Route]:
    """The routes with their endpoints behind the check; UnclassifiedRoute (at start-up) for a
    route with no access row."""
    failures = FailedKeyLimit(RateLimiter(settings.failed_key_rate_per_min))
    site_limits = SiteLimits.from_settings(settings)
    out: list[Route] = []
    for route in routes:
        methods = sorted(route.methods or ())
        for method in methods:
            required_access(method, route.path)  # refuses an unclassified route now
        guarded = _guard(route.endpoint, route.path, settings, limits, failures, site_limits)
        check_fields = partial(_require_access_on, route.path)
        out.append(
            GuardedRoute(
                route.path, guarded, methods=methods, name=route.name, check_fields=check_fields
            )
        )
    return out


def _require_access_on(path: str, request: Request, fields: Collection[str]) -> None:
    """The guard's check again, for a route whose level depends on its body (a POST twin with
    `at`: services/http/subjects.py): 403 unless the caller's key has the scope it needs."""
    needed = required_access(request.method, path, list(fields))
    caller = caller_of(request)
    if needed in (PUBLIC, TOKEN_PAGE, ANY_KEY, SITE_KEY):
        return
    if caller is None or not permits(caller.scopes, needed):
        raise _forbidden(needed)
