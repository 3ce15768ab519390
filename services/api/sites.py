"""POST, GET /v1/sites and DELETE /v1/sites/{site_id} (admin): the websites whose banners may
record their visitors' cookie choices, and their publishable keys. A revoked site's key is
refused within LEDGER_API_KEY_REFRESH_S (the API reloads sites with the API keys). The table
and its SQL: projections/sites.py.

Design: docs/integrators/websites.md
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse

from projections.sites import list_sites, revoke_site
from services.config import Settings, is_loopback
from services.http.app_state import api_keys_of, ledger_of
from services.http.body import read_json_object
from services.http.openapi_parts import (
    NULLABLE_TIME,
    PROBLEM,
    STRING,
    TIME,
    array,
    json_answer,
    obj,
    problem_answer,
    request_body,
)
from services.http.problems import ProblemError, field_error, invalid
from services.identity.site_registry import check_registration, create_site

PATH: Final = "/v1/sites"
ITEM_PATH: Final = "/v1/sites/{site_id}"
_FIELDS: Final = frozenset({"name", "origins", "purposes"})


def http_loopback(settings: Settings) -> bool:
    """Whether plain-http loopback origins may be registered: only where the ledger's own
    public URL is loopback (a development machine)."""
    return is_loopback(urlsplit(settings.public_base_url).hostname or "")


async def register(request: Request) -> JSONResponse:
    """Register a site: 201 with its id and its key, shown this once."""
    ledger = ledger_of(request)
    body = await read_json_object(request)
    unknown = sorted(set(body) - _FIELDS)
    registration, problems = check_registration(
        body.get("name"),
        body.get("origins"),
        body.get("purposes"),
        ledger.catalogue,
        http_loopback=http_loopback(ledger.settings),
    )
    errors = [field_error(p.field, p.detail) for p in problems]
    errors += [field_error(name[:64], "is not a field of a site") for name in unknown]
    if errors or registration is None:
        raise invalid(errors)
    key, row = await create_site(ledger.pool, registration, ledger.secrets.api_key_hash_key)
    # this process at once; the others on the NOTIFY
    await api_keys_of(request).reload()
    return JSONResponse({**row.as_json(), "key": key}, 201)


async def list_all(request: Request) -> JSONResponse:
    rows = await list_sites(ledger_of(request).pool)
    return JSONResponse({"sites": [row.as_json() for row in rows]})


async def revoke(request: Request) -> JSONResponse:
    site_id = request.path_params["site_id"]
    row = await revoke_site(ledger_of(request).pool, site_id) if len(site_id) <= 64 else None
    if row is None:
        raise ProblemError(404, "Not found", f"no site {site_id[:64]!r}", kind="not-found")
    await api_keys_of(request).reload()
    return JSONResponse(row.as_json())


_SITE: Final = obj(
    {
        "site_id": STRING,
        "name": STRING,
        "origins": array(STRING),
        "purposes": array(STRING),
        "created_at": TIME,
        "revoked_at": NULLABLE_TIME,
    }
)
_SITE_ID: Final = {"name": "site_id", "in": "path", "required": True, "schema": STRING}
REGISTER_OPERATION: Final[dict[str, Any]] = {
    "summary": "Register a website and issue its publishable key",
    "description": "`purposes` defaults to those the catalogue marks browser_collectable."
    " Origins are https (plain http only for a loopback host where the public URL is"
    " loopback), without a path.",
    "requestBody": request_body(
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["name", "origins"],
            "properties": {
                "name": STRING,
                "origins": array(STRING),
                "purposes": array(STRING),
            },
        }
    ),
    "responses": {
        "201": json_answer(
            "registered; `key` (pk_...) is shown only here",
            {
                **_SITE,
                "required": [*_SITE["required"], "key"],
                "properties": {**_SITE["properties"], "key": STRING},
            },
        ),
        "4XX": PROBLEM,
    },
}
LIST_OPERATION: Final[dict[str, Any]] = {
    "summary": "The registered websites (never their keys)",
    "responses": {"200": json_answer("every site", obj({"sites": array(_SITE)})), "4XX": PROBLEM},
}
REVOKE_OPERATION: Final[dict[str, Any]] = {
    "summary": "Revoke a website's key for good",
    "parameters": [_SITE_ID],
    "responses": {
        "200": json_answer("revoked (revoking twice keeps the first time)", _SITE),
        "404": problem_answer("no such site"),
        "4XX": PROBLEM,
    },
}
