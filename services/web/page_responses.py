"""What every HTML page answers with: its headers, and the error that becomes an error page.

Shared by the public pages (services/web/routes.py) and the auditor's page
(services/web/audit.py): never cached, never sent on as a referrer, never framed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import asyncpg
from starlette.responses import HTMLResponse

HEADERS: Final = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Robots-Tag": "noindex, nofollow",
    # CSP frame-ancestors covers current browsers; older ones only know this
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline';"
    " form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
}
#: a backing service failing: the page says "try again" (503), not "something went wrong"
DEPENDENCY_ERRORS: Final = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.OperatorInterventionError,
    OSError,
    TimeoutError,
)


class PageError(Exception):
    """Answer with the error page: a status, a heading and words that reveal nothing. The
    public pages pass msgids (services/web/page_errors.py), translated when the page is
    rendered, with `values` for the message's placeholders."""

    def __init__(
        self,
        status: int,
        heading: str,
        message: str,
        headers: dict[str, str] | None = None,
        values: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(heading)
        self.status = status
        self.heading = heading
        self.message = message
        self.headers = headers or {}
        self.values = values or {}


def html_response(
    html: str, status: int = 200, headers: dict[str, str] | None = None
) -> HTMLResponse:
    return HTMLResponse(html, status, headers={**HEADERS, **(headers or {})})
