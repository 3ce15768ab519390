"""The public pages' rate limits: which bucket a request to /u/ or /p/ spends from, so a
mailbox provider's one-click unsubscribes are never lost to a per-address limit.

Design: docs/developers/design/public-pages.md
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
from services.identity.links import (
    CONFIRM,
    PREFERENCES,
    UNSUBSCRIBE,
    LinkClaims,
    LinkError,
    LinkKind,
)
from services.web.page_errors import request_language, too_many_requests
from services.web.routes import open_link

#: one-click POSTs a minute for one unsubscribe link (a provider posts once, a person clicks
#: a few times; every one after the first records nothing)
ONE_CLICK_PER_MIN: Final = 10
UNSUBSCRIBE_ROUTE: Final = "/u/{token}"
PREFERENCES_ROUTE: Final = "/p/{token}"
CONFIRM_ROUTE: Final = "/c/{token}"

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
        if not waited:
            return None
        kind = {UNSUBSCRIBE_ROUTE: UNSUBSCRIBE, CONFIRM_ROUTE: CONFIRM}.get(route, PREFERENCES)
        sealed = _valid(opener, token, kind)
        language = request_language(request, sealed.language if sealed else None)
        return too_many_requests(ledger, language, retry_after(waited))


def _valid(open_link: Opener, token: str, kind: LinkKind) -> LinkClaims | None:
    try:
        return open_link(token, kind)
    except LinkError:
        return None
