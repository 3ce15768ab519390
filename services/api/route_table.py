"""Every route, declared once: method, path, handler, who may call it and its OpenAPI operation.

The router (services/api/app.py `routes`), the access check (services/api/access.py, which
services/api/guard.py applies) and the OpenAPI document (services/api/openapi.py) are all built
from ROUTES. Each operation is declared beside its handler. This module and services/api/app.py
are the only ones in services/api/ that import services/web/.

The router tries routes in order: the decision and the commands, called before every send and
for every change, come first.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from starlette.requests import Request
from starlette.responses import JSONResponse

from schemas.events import BY_IDENTIFIER
from services.api import (
    access_log,
    audiences,
    batch,
    collect,
    erasure,
    exports,
    identifiers,
    metrics,
    notices,
    openapi,
    purposes,
    read,
    readiness,
    receipts,
    records_of_processing,
    requests,
    signups,
    sites,
    suppressions,
    unsubscribe,
    verify,
    webhook_deliveries,
    webhooks,
)
from services.api.body_schemas import command_operation
from services.api.commands import COMMANDS
from services.api.write import command_endpoint
from services.http.app_state import ledger_of
from services.http.route_spec import (
    ANY_KEY,
    KEY_OPTIONAL,
    PUBLIC,
    SITE_KEY,
    TOKEN_PAGE,
    RouteSpec,
)
from services.identity.api_keys import ADMIN, AUDIENCE, AUDIT, DECIDE, NOTICES, RECORD, REQUESTS
from services.web import audit, confirmation, consent_script, staff
from services.web import routes as pages
from services.web.page_limits import PREFERENCES_ROUTE, UNSUBSCRIBE_ROUTE

SUBJECT: Final = "/v1/subjects/{subject_id}"
#: the subject routes that take `by-identifier` in place of a subject id
SUBJECT_VIEWS: Final = ("consent", "events", "history", "export", "verify")
#: GET route template -> the path of its POST twin, which takes the same fields as a JSON body
#: so an e-mail address or phone number stays out of the URL (services/http/subjects.py)
POST_TWINS: Final[Mapping[str, str]] = MappingProxyType(
    {
        read.DECISION_PATH: read.DECISION_PATH,
        **{f"{SUBJECT}/{view}": f"/v1/subjects/{BY_IDENTIFIER}/{view}" for view in SUBJECT_VIEWS},
        audit.PATH: audit.PATH.replace("{subject_id}", BY_IDENTIFIER),
    }
)


async def openapi_json(request: Request) -> JSONResponse:
    """GET /openapi.json: the document of ROUTES, made on first use and again once the
    catalogue changed (its purposes are the enums of the purpose fields)."""
    state = request.app.state
    catalogue = ledger_of(request).catalogue
    made = getattr(state, "openapi", None)
    if made is None or made[0] != catalogue:
        made = state.openapi = (catalogue, openapi.openapi_document(catalogue, ROUTES))
    return JSONResponse(made[1])


_COMMANDS: Final = tuple(
    RouteSpec(
        "POST",
        f"{SUBJECT}/{path}",
        command_endpoint(path, build),
        RECORD,
        command_operation(path, build),
    )
    for path, build in COMMANDS.items()
)
_REQUEST_STEPS: Final = tuple(
    RouteSpec(
        "POST",
        f"{requests.ITEM_PATH}/{step}",
        requests.step_endpoint(step),
        REQUESTS,
        requests.step_operation(step),
    )
    for step in requests.STEP_NAMES
)
_IDENTIFIERS: Final = f"{SUBJECT}/identifiers"

_DECLARED: Final = (
    RouteSpec("GET", read.DECISION_PATH, read.decision, DECIDE, read.decision_operation),
    *_COMMANDS,
    RouteSpec("POST", signups.PATH, signups.create_signup, RECORD, signups.OPERATION),
    RouteSpec("POST", _IDENTIFIERS, identifiers.link, RECORD, identifiers.LINK_OPERATION),
    RouteSpec("DELETE", _IDENTIFIERS, identifiers.unlink, RECORD, identifiers.UNLINK_OPERATION),
    RouteSpec("POST", "/v1/decisions/batch", batch.batch_decisions, DECIDE, batch.OPERATION),
    RouteSpec("GET", f"{SUBJECT}/consent", read.consent_state, AUDIT, read.CONSENT_OPERATION, True),
    RouteSpec("GET", f"{SUBJECT}/events", read.subject_events, AUDIT, read.EVENTS_OPERATION),
    RouteSpec("GET", verify.PATH, verify.verify_subject, AUDIT, verify.OPERATION, True),
    RouteSpec("GET", exports.HISTORY_PATH, exports.history, AUDIT, exports.HISTORY_OPERATION, True),
    RouteSpec("GET", exports.EXPORT_PATH, exports.export, AUDIT, exports.EXPORT_OPERATION, True),
    RouteSpec("GET", purposes.PATH, purposes.list_purposes, ANY_KEY, purposes.LIST_OPERATION),
    RouteSpec(
        "GET", purposes.HISTORY_PATH, purposes.purpose_history, ANY_KEY, purposes.HISTORY_OPERATION
    ),
    RouteSpec("PUT", purposes.PURPOSE_PATH, purposes.put_purpose, ADMIN, purposes.PUT_OPERATION),
    RouteSpec(
        "DELETE", purposes.PURPOSE_PATH, purposes.retire_purpose, ADMIN, purposes.RETIRE_OPERATION
    ),
    RouteSpec("GET", suppressions.PATH, suppressions.suppressions, DECIDE, suppressions.OPERATION),
    RouteSpec("GET", audiences.PATH, audiences.audience, AUDIENCE, audiences.OPERATION),
    RouteSpec("GET", read.HEALTHZ_PATH, read.healthz, PUBLIC, read.HEALTHZ_OPERATION),
    RouteSpec("GET", "/readyz", readiness.readyz, KEY_OPTIONAL, readiness.OPERATION),
    RouteSpec("GET", openapi.PATH, openapi_json, PUBLIC, openapi.OPERATION),
    RouteSpec(
        "POST", "/v1/unsubscribe-links", unsubscribe.create_links, RECORD, unsubscribe.OPERATION
    ),
    RouteSpec(
        "GET", UNSUBSCRIBE_ROUTE, pages.unsubscribe, TOKEN_PAGE, pages.UNSUBSCRIBE_PAGE_OPERATION
    ),
    RouteSpec("POST", UNSUBSCRIBE_ROUTE, pages.unsubscribe, TOKEN_PAGE, pages.ONE_CLICK_OPERATION),
    RouteSpec(
        "GET", PREFERENCES_ROUTE, pages.preferences, TOKEN_PAGE, pages.PREFERENCES_PAGE_OPERATION
    ),
    RouteSpec(
        "POST", PREFERENCES_ROUTE, pages.preferences, TOKEN_PAGE, pages.SAVE_PREFERENCES_OPERATION
    ),
    RouteSpec(
        "GET", confirmation.ROUTE, confirmation.confirm, TOKEN_PAGE, confirmation.PAGE_OPERATION
    ),
    RouteSpec(
        "POST", confirmation.ROUTE, confirmation.confirm, TOKEN_PAGE, confirmation.POST_OPERATION
    ),
    RouteSpec("GET", metrics.PATH, metrics.metrics_endpoint, ADMIN, metrics.OPERATION),
    RouteSpec("POST", erasure.PATH, erasure.erase, ADMIN, erasure.operation),
    RouteSpec("POST", requests.PATH, requests.receive_request, RECORD, requests.receive_operation),
    RouteSpec("GET", requests.PATH, requests.list_requests, AUDIT, requests.LIST_OPERATION),
    RouteSpec("GET", requests.ITEM_PATH, requests.show_request, AUDIT, requests.SHOW_OPERATION),
    *_REQUEST_STEPS,
    RouteSpec("POST", "/v1/notices", notices.publish, NOTICES, notices.PUBLISH_OPERATION),
    RouteSpec("GET", "/v1/notices", notices.list_notices, ANY_KEY, notices.LIST_OPERATION),
    RouteSpec(
        "GET", notices.RECONSENT_PATH, notices.reconsent, DECIDE, notices.RECONSENT_OPERATION
    ),
    RouteSpec(
        "GET", "/v1/receipts/{event_id}", receipts.receipt, AUDIT, receipts.RECEIPT_OPERATION, True
    ),
    RouteSpec("GET", receipts.JWKS_PATH, receipts.jwks, PUBLIC, receipts.JWKS_OPERATION),
    RouteSpec(
        "GET",
        consent_script.LATEST_PATH,
        consent_script.latest_script,
        PUBLIC,
        consent_script.LATEST_OPERATION,
    ),
    RouteSpec(
        "GET",
        consent_script.FILE_PATH,
        consent_script.sdk_file,
        PUBLIC,
        consent_script.FILE_OPERATION,
    ),
    RouteSpec("GET", audit.PATH, audit.subject, AUDIT, audit.SUBJECT_PAGE_OPERATION, True),
    RouteSpec("GET", staff.HOME_PATH, staff.home, KEY_OPTIONAL, staff.HOME_OPERATION, True),
    RouteSpec("POST", staff.SIGN_IN_PATH, staff.sign_in, PUBLIC, staff.SIGN_IN_OPERATION),
    RouteSpec("POST", staff.SIGN_OUT_PATH, staff.sign_out, PUBLIC, staff.SIGN_OUT_OPERATION),
    RouteSpec("POST", staff.SEARCH_PATH, staff.search, AUDIT, staff.SEARCH_OPERATION, True),
    RouteSpec("GET", access_log.PATH, access_log.access_log, AUDIT, access_log.OPERATION),
    RouteSpec(
        "GET",
        records_of_processing.PATH,
        records_of_processing.records_of_processing,
        AUDIT,
        records_of_processing.OPERATION,
    ),
    RouteSpec("POST", collect.PATH, collect.record_choices, SITE_KEY, collect.POST_OPERATION),
    RouteSpec("GET", collect.PATH, collect.show_choices, SITE_KEY, collect.GET_OPERATION),
    RouteSpec("OPTIONS", collect.PATH, collect.preflight, PUBLIC, collect.PREFLIGHT_OPERATION),
    RouteSpec("POST", sites.PATH, sites.register, ADMIN, sites.REGISTER_OPERATION),
    RouteSpec("GET", sites.PATH, sites.list_all, ADMIN, sites.LIST_OPERATION),
    RouteSpec("DELETE", sites.ITEM_PATH, sites.revoke, ADMIN, sites.REVOKE_OPERATION),
    RouteSpec("POST", webhooks.PATH, webhooks.create, ADMIN, webhooks.CREATE_OPERATION),
    RouteSpec("GET", webhooks.PATH, webhooks.list_all, ADMIN, webhooks.LIST_OPERATION),
    RouteSpec("GET", webhooks.ITEM_PATH, webhooks.show, ADMIN, webhooks.SHOW_OPERATION),
    RouteSpec("PATCH", webhooks.ITEM_PATH, webhooks.update, ADMIN, webhooks.UPDATE_OPERATION),
    RouteSpec("DELETE", webhooks.ITEM_PATH, webhooks.delete, ADMIN, webhooks.DELETE_OPERATION),
    RouteSpec(
        "POST", webhooks.ROTATE_PATH, webhooks.rotate_secret, ADMIN, webhooks.ROTATE_OPERATION
    ),
    RouteSpec(
        "GET",
        webhook_deliveries.PATH,
        webhook_deliveries.list_deliveries,
        ADMIN,
        webhook_deliveries.LIST_OPERATION,
    ),
    RouteSpec(
        "POST",
        webhook_deliveries.REDELIVER_PATH,
        webhook_deliveries.redeliver,
        ADMIN,
        webhook_deliveries.REDELIVER_OPERATION,
    ),
)

#: every route: the declared ones, then each lookup route's POST twin, which runs the GET
#: route's handler at its access level
ROUTES: Final[tuple[RouteSpec, ...]] = (
    *_DECLARED,
    *(s.twin(POST_TWINS[s.path]) for s in _DECLARED if s.method == "GET" and s.path in POST_TWINS),
)
