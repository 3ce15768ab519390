"""The public pages' rate limits: which bucket a request to /u/ or /p/ spends from.

Three kinds of token bucket (services/http/rate_limit.py), in the memory of each API process:

- per client network (an IPv4 address, an IPv6 /64): every request to /u/ and /p/,
  LEDGER_PUBLIC_RATE_PER_MIN a minute, except a POST to /u/ with a valid unsubscribe link;
- per unsubscribe link, ONE_CLICK_PER_MIN a minute: that POST. It is the RFC 8058 one-click
  unsubscribe a mailbox provider sends from a few addresses of its own for every recipient
  who presses its button, thousands a minute after a large mailing, and retries rarely if
  ever: throttled by address, a withdrawal would be lost. Only a link the ledger sealed
  spends here (it cannot be forged, and each opens a bucket of its own), and the POST is
  idempotent (a repeat records nothing), so the exemption gives nobody a way to write more
  than one withdrawal per link, and an invalid link still spends from its address's bucket;
- per subject, LEDGER_PREFERENCE_SAVES_PER_MIN a minute: a save on /p/ that would record a
  change, on top of its address's bucket. Each save appends events to a log kept for ever, so
  whoever holds a link (their own will do) cannot toggle a box hundreds of times a minute. The
  page spends it (`save_wait`) once the link has opened, revocation included, and the form is
  known to change something: a revoked link, a stale page or a save that changes nothing
  costs the person nothing, so whoever holds a leaked, revoked link cannot use up their saves.

Over a limit the answer is the pages' own 429 page, with Retry-After.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from starlette.requests import Request
from starlette.responses import Response

from services.config import Settings
from services.http.app_state import ledger_of
from services.http.rate_limit import RateLimiter, client_key, retry_after
from services.identity.links import UNSUBSCRIBE, LinkClaims, LinkError, LinkKind
from services.web.routes import open_link, too_many_requests

#: one-click POSTs a minute for one unsubscribe link (a provider posts once, a person clicks
#: a few times; every one after the first records nothing)
ONE_CLICK_PER_MIN: Final = 10
UNSUBSCRIBE_ROUTE: Final = "/u/{token}"
PREFERENCES_ROUTE: Final = "/p/{token}"

#: opens a token of a kind, raising LinkError (services/web/routes.py `open_link`)
Opener = Callable[[str, LinkKind], LinkClaims]


@dataclass(frozen=True, slots=True)
class PageLimits:
    per_address: RateLimiter
    per_link: RateLimiter
    per_subject: RateLimiter

    @classmethod
    def from_settings(cls, settings: Settings) -> PageLimits:
        return cls(
            RateLimiter(settings.public_rate_per_min),
            RateLimiter(ONE_CLICK_PER_MIN),
            RateLimiter(settings.preference_saves_per_min),
        )

    def wait(
        self, method: str, route: str, token: str, client: str, now: float, open_link: Opener
    ) -> float:
        """Seconds until the request may be served (0: now); spends from its buckets (the
        per-subject one is the preference page's to spend: `save_wait`)."""
        if method == "POST" and route == UNSUBSCRIBE_ROUTE:
            claims = _valid(open_link, token, UNSUBSCRIBE)
            if claims is not None:
                return self.per_link.take(claims.link_id, now)
        return self.per_address.take(client_key(client), now)

    def save_wait(self, subject_id: str, now: float) -> float:
        """Seconds until a save that changes the subject's choices may be recorded (0: now)."""
        return self.per_subject.take(subject_id, now)

    def refuse(self, request: Request, route: str, now: float) -> Response | None:
        """The 429 page when the request is over a limit, else None."""
        ledger = ledger_of(request)
        client = request.client.host if request.client else ""
        token = str(request.path_params.get("token", ""))

        def opener(text: str, kind: LinkKind) -> LinkClaims:
            return open_link(ledger, text, kind)

        waited = self.wait(request.method, route, token, client, now, opener)
        return too_many_requests(ledger, retry_after(waited)) if waited else None


def _valid(open_link: Opener, token: str, kind: LinkKind) -> LinkClaims | None:
    try:
        return open_link(token, kind)
    except LinkError:
        return None
