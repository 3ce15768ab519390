"""The auditor's error page as the access check answers it for a staff session (ended, a
refused form, a request from another origin): HTML with a way back, never problem+json, on
pages a DPO reads in a browser.

Design: docs/security/staff-sessions.md
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from services.http.app_state import ledger_of
from services.http.staff_auth import signed_in_session
from services.identity.staff_sessions import csrf_token
from services.web import audit_view
from services.web.page_responses import html_response


def home_href(path: str) -> str:
    """The relative link from an audit page back to /audit/ (a path prefix in front of the
    ledger keeps working): from /audit/a/b, `../`."""
    depth = path.count("/") - 2
    return "../" * depth or "./"


def staff_error(
    request: Request, status: int, heading: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    """The error page, linking back to /audit/ and, while the session is live, signing out."""
    session = signed_in_session(request)
    html = audit_view.error_page(
        controller=ledger_of(request).settings.controller_name,
        heading=heading,
        message=message,
        home_href=home_href(request.url.path),
        csrf_token=csrf_token(session) if session else None,
    )
    return html_response(html, status, headers)
