"""The access check of the routes a website's banner calls (access level SITE_KEY,
services/http/route_spec.py): an Origin header, a valid publishable key of a site that lists
that origin, then the collection rate limits. CORS headers name the origin only once it is
known to be one of the site's, so a foreign page learns nothing and can read no answer.

Design: docs/developers/design/websites.md
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Final

from starlette.requests import Request
from starlette.responses import Response

from projections.sites import SiteRow
from services.config import Settings
from services.http.app_state import api_keys_of
from services.http.ledger_problems import ledger_problem
from services.http.problems import ProblemError, unavailable
from services.http.rate_limit import RateLimiter, client_key, retry_after
from services.http.route_spec import Endpoint
from services.identity.api_key_store import KeysUnavailable
from services.identity.api_keys import KeyRefused
from services.ledger.errors import LedgerError

REALM = 'Bearer realm="consent-ledger"'
#: what a banner's request may carry, named one by one: `*` does not cover Authorization
ALLOW_HEADERS = "authorization, content-type"
ALLOW_METHODS = "GET, POST"
#: how long a browser may reuse a preflight's answer (seconds)
PREFLIGHT_MAX_AGE = "600"


def cors_headers(origin: str) -> dict[str, str]:
    """The CORS headers of an answer to one of a site's own origins (never `*`)."""
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Expose-Headers": "Retry-After, Idempotent-Replayed",
        "Vary": "Origin",
    }


def preflight_headers(origin: str) -> dict[str, str]:
    return {
        **cors_headers(origin),
        "Access-Control-Allow-Methods": ALLOW_METHODS,
        "Access-Control-Allow-Headers": ALLOW_HEADERS,
        "Access-Control-Max-Age": PREFLIGHT_MAX_AGE,
    }


def origin_refused(detail: str) -> ProblemError:
    return ProblemError(403, "Forbidden", detail, headers={"Vary": "Origin"}, kind="forbidden")


def _unauthorized(reason: str) -> ProblemError:
    return ProblemError(
        401,
        "Unauthorized",
        reason,
        headers={"WWW-Authenticate": f'{REALM}, error="invalid_token"', "Vary": "Origin"},
        kind="unauthorized",
    )


#: how many reads of one address each write of its budget stands for
READS_PER_WRITE: Final = 10


@dataclass(slots=True)
class SiteLimits:
    """The collection rate limits: requests per minute of one site key, of one client
    address (an IPv6 /64)."""

    per_site: RateLimiter
    per_address: RateLimiter
    #: reads (the banner's GET on every page load) of one client address: many visitors can
    #: share one address (a company's network), and reads never count against the site's
    #: budget, so nobody can use it up to hide the visitors' choices
    reads_per_address: RateLimiter

    @classmethod
    def from_settings(cls, settings: Settings) -> SiteLimits:
        per_address = settings.collect_rate_per_address_per_min
        return cls(
            RateLimiter(settings.collect_rate_per_site_per_min),
            RateLimiter(per_address),
            RateLimiter(per_address * READS_PER_WRITE),
        )

    def wait(self, site_id: str, host: str, now: float, *, write: bool = True) -> float:
        """0 when the request may go on (spending from its buckets), else seconds to wait: a
        write spends from the address's and the site's budget, a read from the address's
        read budget only."""
        if not write:
            return self.reads_per_address.take(client_key(host), now)
        return self.per_address.take(client_key(host), now) or self.per_site.take(site_id, now)


def site_of(request: Request) -> SiteRow:
    """The site whose key the guard accepted for this request."""
    site: SiteRow = request.state.site
    return site


def allowed_origin(request: Request) -> str | None:
    """The request's Origin when a valid site lists it (for a preflight, which carries no
    key), else None."""
    origin = request.headers.get("origin")
    if origin is None:
        return None
    keys = api_keys_of(request)
    if time.monotonic() - keys.loaded_at > keys.max_age_s:
        raise unavailable("the site keys could not be reloaded from the database", 2)
    live = (s for s in keys.sites.values() if s.revoked_at is None)
    return origin if any(origin in s.origins for s in live) else None


async def guard_site(request: Request, endpoint: Endpoint, limits: SiteLimits) -> Response:
    """Run `endpoint` for a site's own page, or refuse: 403 without an Origin or with one the
    site does not list (no CORS headers), 401 for a bad key, 429 over a limit."""
    origin = request.headers.get("origin")
    if origin is None:
        raise origin_refused(
            "a site key is accepted only from a web page: the Origin header is required"
        )
    keys = api_keys_of(request)
    try:
        site = keys.authenticate_site(request.headers.get("authorization"))
    except (KeyRefused, KeysUnavailable) as exc:
        refused = (
            _unauthorized(exc.reason) if isinstance(exc, KeyRefused) else unavailable(str(exc), 2)
        )
        # a registered origin's banner can read why (a revoked key, a ledger not ready)
        if any(origin in s.origins for s in keys.sites.values() if s.revoked_at is None):
            refused.headers = {**refused.headers, **cors_headers(origin)}
        raise refused from None
    if origin not in site.origins:
        raise origin_refused(f"origin {origin[:255]!r} is not one of this site's origins")
    cors = cors_headers(origin)
    host = request.client.host if request.client else ""
    wait = limits.wait(site.site_id, host, time.monotonic(), write=request.method == "POST")
    if wait:
        seconds = retry_after(wait)
        raise ProblemError(
            429,
            "Too many requests",
            f"too many consent requests from this site or address; retry in {seconds} s",
            headers={**cors, "Retry-After": str(seconds)},
            kind="too-many-requests",
        )
    request.state.site = site
    try:
        response = await endpoint(request)
    except ProblemError as exc:
        exc.headers = {**exc.headers, **cors}
        raise
    except LedgerError as exc:
        problem = ledger_problem(exc, keyed=False)
        problem.headers = {**problem.headers, **cors}
        raise problem from None
    response.headers.update(cors)
    return response
