"""POST /v1/unsubscribe-links: the URLs and header values a mailing puts in each message;
nothing is stored, each link is a sealed token.

Design: docs/developers/design/links.md
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse

from schemas.events import rfc3339
from services.api import openapi_responses as answers
from services.bootstrap import Ledger
from services.config import Settings
from services.http.app_state import ledger_of
from services.http.body import Fields, read_json_object
from services.http.openapi_parts import problem_answer, request_body
from services.http.problems import ProblemError
from services.http.subjects import (
    LOOKUP_PARAMETERS,
    UnknownIdentifier,
    subject_from_query,
    unknown_subject_problem,
)
from services.identity import links
from services.identity.identities import blind_index, normalise
from services.rules.languages import LANGUAGES

ONE_CLICK: Final = "List-Unsubscribe=One-Click"


def link_urls(settings: Settings, unsubscribe: str, preferences: str) -> tuple[str, str]:
    """The unsubscribe and preference URLs of the two tokens under the public base URL."""
    base = settings.public_base_url
    return f"{base}/u/{unsubscribe}", f"{base}/p/{preferences}"


def _address(ledger: Ledger, body: Mapping[str, Any]) -> bytes | None:
    """The blind index of the e-mail address or phone number the links are asked for (None:
    asked by subject id); the links seal a prefix of it, so unlinking it can revoke them."""
    for name, kind in LOOKUP_PARAMETERS.items():
        value = body.get(name)
        if isinstance(value, str):
            return blind_index(ledger.secrets.blind_index_key, kind, normalise(kind, value))
    return None


async def create_links(request: Request) -> JSONResponse:
    ledger = ledger_of(request)
    problem = ledger.settings.public_url_problem
    if problem:
        raise ProblemError(503, "Public URL not set", problem, kind="public-url-not-set")
    body = await read_json_object(request)
    f = Fields(body)
    dm = {p.id: p for p in ledger.catalogue.marketing_purposes()}
    pid = f.choice("purpose", dm, required=True)
    purpose = dm.get(pid) if pid else None
    channel = f.choice("channel", purpose.channels if purpose else (), required=True)
    campaign_id = f.text("campaign_id", max_len=100, free_text=True)
    language = f.choice("language", LANGUAGES)
    problem = links.field_problem(campaign_id) if campaign_id is not None else None
    if problem:  # 100 characters can be more than the token's 255 bytes (emoji, say)
        f.error("campaign_id", problem)
        campaign_id = None
    try:
        subject_id = await subject_from_query(ledger, f)
    except UnknownIdentifier as exc:
        f.finish()
        raise unknown_subject_problem(exc) from None
    f.finish()
    assert purpose is not None and channel is not None
    now = datetime.now(UTC)
    address = _address(ledger, body)
    lifetimes = ledger.settings.link_lifetimes()
    ids = {kind: links.new_link_id() for kind in lifetimes}
    unsubscribe_token, preferences_token = (
        links.issue(
            ledger.secrets.links,
            kind=kind,
            subject_id=subject_id,
            purpose=purpose.id,
            channel=channel,
            campaign_id=campaign_id,
            now=now,
            ttl=lifetimes[kind],
            link_id=ids[kind],
            address=address,
            language=language,
        )
        for kind in (links.UNSUBSCRIBE, links.PREFERENCES)
    )
    url, preferences_url = link_urls(ledger.settings, unsubscribe_token, preferences_token)
    expires = {kind: now.replace(microsecond=0) + ttl for kind, ttl in lifetimes.items()}
    return JSONResponse(
        {
            "url": url,
            "preferences_url": preferences_url,
            "headers": {"List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": ONE_CLICK},
            "expires_at": rfc3339(expires[links.UNSUBSCRIBE]),
            "preferences_expires_at": rfc3339(expires[links.PREFERENCES]),
            "link_ids": {kind: link_id.hex() for kind, link_id in ids.items()},
        }
    )


OPERATION: Final[dict[str, Any]] = {
    "summary": "Issue the List-Unsubscribe URL and header values for one recipient",
    "requestBody": request_body(
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["purpose", "channel"],
            "properties": {
                "subject_id": {"type": "string"},
                "email": {"type": "string"},
                "phone": {"type": "string"},
                "purpose": {"type": "string"},
                "channel": {"type": "string"},
                "campaign_id": {"type": "string"},
                "language": {
                    "type": "string",
                    "enum": list(LANGUAGES),
                    "description": "the language of both links' pages (else the browser's)",
                },
            },
        }
    ),
    "responses": {
        "200": answers.UNSUBSCRIBE_LINKS,
        "4XX": problem_answer("problem details (RFC 9457)"),
        "503": problem_answer("LEDGER_PUBLIC_URL is not set on a non-loopback host"),
    },
}
