"""Which key each route needs: one table (pure data) and one pure function over it.

Every route of services/api/app.py `routes()` must have a row: the app refuses to start with
an unclassified route (services/api/guard.py asks `required_access` for each), so a new route
is never left open by accident. The OpenAPI document can read ROUTE_ACCESS for its security
requirements.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from types import MappingProxyType
from typing import Final

from schemas.events import BY_IDENTIFIER
from services.api import (
    access_log,
    erasure,
    exports,
    notices,
    receipts,
    requests,
    suppressions,
    verify,
)
from services.api.commands import COMMANDS
from services.identity.api_keys import ADMIN, AUDIT, DECIDE, NOTICES, RECORD, REQUESTS
from services.web import audit

#: no key: health, the OpenAPI document, the receipt-verifying public keys
PUBLIC: Final = "public"
#: no key, rate-limited per client address: the unsubscribe and preference pages
TOKEN_PAGE: Final = "token-page"
#: any valid key, whatever its scopes: reference data that names no subject
ANY_KEY: Final = "any-key"
#: no key needed, but a valid key (any scope) is checked and sees more: /readyz's details
KEY_OPTIONAL: Final = "key-optional"
ACCESS_LEVELS: Final = (
    PUBLIC,
    TOKEN_PAGE,
    KEY_OPTIONAL,
    ANY_KEY,
    DECIDE,
    RECORD,
    NOTICES,
    REQUESTS,
    AUDIT,
    ADMIN,
)

METRICS_PATH: Final = "/metrics"
SUBJECT: Final = "/v1/subjects/{subject_id}"

#: the subject routes that take `by-identifier` in place of a subject id
SUBJECT_VIEWS: Final = ("consent", "events", "history", "export", "verify")
#: GET route template -> the path of its POST twin, which takes the same fields as a JSON body
#: so an e-mail address or phone number stays out of the URL (services/api/lookups.py)
POST_TWINS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "/v1/decision": "/v1/decision",
        **{f"{SUBJECT}/{view}": f"/v1/subjects/{BY_IDENTIFIER}/{view}" for view in SUBJECT_VIEWS},
        audit.PATH: audit.PATH.replace("{subject_id}", BY_IDENTIFIER),
    }
)

#: (method, route template) -> access level (a scope, or one of the three above)
_DECLARED: Final[Mapping[tuple[str, str], str]] = {
    **{("POST", f"{SUBJECT}/{path}"): RECORD for path in COMMANDS},
    ("POST", f"{SUBJECT}/identifiers"): RECORD,
    ("DELETE", f"{SUBJECT}/identifiers"): RECORD,
    ("POST", "/v1/unsubscribe-links"): RECORD,
    ("POST", "/v1/notices"): NOTICES,
    ("POST", requests.PATH): RECORD,
    **{("POST", f"{requests.ITEM_PATH}/{step}"): REQUESTS for step in requests.STEP_NAMES},
    ("GET", "/v1/decision"): DECIDE,
    ("POST", "/v1/decisions/batch"): DECIDE,
    ("GET", suppressions.PATH): DECIDE,
    ("GET", notices.RECONSENT_PATH): DECIDE,
    ("GET", f"{SUBJECT}/consent"): AUDIT,
    ("GET", f"{SUBJECT}/events"): AUDIT,
    ("GET", verify.PATH): AUDIT,
    ("GET", exports.HISTORY_PATH): AUDIT,
    ("GET", exports.EXPORT_PATH): AUDIT,
    ("GET", "/v1/receipts/{event_id}"): AUDIT,
    ("GET", requests.PATH): AUDIT,
    ("GET", requests.ITEM_PATH): AUDIT,
    ("GET", audit.PATH): AUDIT,
    ("GET", access_log.PATH): AUDIT,
    ("POST", erasure.PATH): ADMIN,
    ("GET", METRICS_PATH): ADMIN,
    ("GET", "/v1/purposes"): ANY_KEY,
    ("GET", "/v1/notices"): ANY_KEY,
    ("GET", "/u/{token}"): TOKEN_PAGE,
    ("POST", "/u/{token}"): TOKEN_PAGE,
    ("GET", "/p/{token}"): TOKEN_PAGE,
    ("POST", "/p/{token}"): TOKEN_PAGE,
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): KEY_OPTIONAL,
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", receipts.JWKS_PATH): PUBLIC,
}
#: every route's level: the declared ones, and each POST twin at its GET route's level
ROUTE_ACCESS: Final[Mapping[tuple[str, str], str]] = {
    **_DECLARED,
    **{("POST", twin): _DECLARED[("GET", get)] for get, twin in POST_TWINS.items()},
}

#: routes whose `at=` (an as-of read: what the ledger knew then) needs the audit scope
AS_OF_ROUTES: Final = frozenset({("GET", "/v1/decision"), ("POST", "/v1/decision")})


class UnclassifiedRoute(LookupError):
    """A route has no row in ROUTE_ACCESS: add one before serving it."""


def required_access(
    method: str, path: str, query: Collection[str] = (), *, metrics_public: bool = False
) -> str:
    """The access level a request needs: `path` is the route template, `query` the names of
    its query parameters (of a POST twin, its body's fields). HEAD is GET's; /metrics is public
    when LEDGER_METRICS_PUBLIC is on."""
    verb = "GET" if method == "HEAD" else method
    try:
        level = ROUTE_ACCESS[(verb, path)]
    except KeyError:
        raise UnclassifiedRoute(f"{verb} {path} has no row in ROUTE_ACCESS") from None
    if path == METRICS_PATH and metrics_public:
        return PUBLIC
    if (verb, path) in AS_OF_ROUTES and "at" in query:
        return AUDIT
    return level
