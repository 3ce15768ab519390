"""The Starlette application: routes, error handling and the lifespan that opens the ledger."""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from schemas.codec import CodecError
from services.api import (
    access_log,
    batch,
    erasure,
    exports,
    identifiers,
    notices,
    read,
    readiness,
    receipts,
    requests,
    suppressions,
    unsubscribe,
    verify,
)
from services.api.access import POST_TWINS
from services.api.commands import COMMANDS
from services.api.guard import protect
from services.api.metrics import metrics_endpoint
from services.api.observation import ObservedStarlette
from services.api.openapi import openapi_document
from services.api.public_listener import public_listener_middleware
from services.api.write import command_endpoint
from services.bootstrap import Ledger, close_ledger, database_connector, open_ledger
from services.config import Settings
from services.http.problems import ProblemError, instance_of, problem_handler, unavailable
from services.identity.api_key_store import KeyCache, register_admin_key, warn_forgotten_admin_keys
from services.web import audit
from services.web import routes as pages
from services.web.page_limits import PageLimits

log = logging.getLogger(__name__)

LedgerFactory = Callable[[Settings], Awaitable[Ledger]]


async def _http_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    titles = {404: "Not found", 405: "Method not allowed"}
    title = titles.get(exc.status_code, "HTTP error")
    problem = ProblemError(exc.status_code, title, str(exc.detail), headers=dict(exc.headers or {}))
    return problem.response(instance_of(request))


async def _dependency_down(request: Request, exc: Exception) -> Response:
    """A database or network failure is the ledger being unavailable, not a server bug."""
    log.warning("dependency unavailable: %s", type(exc).__name__)
    problem = unavailable("a backing service is unavailable; retry shortly", 2)
    return problem.response(instance_of(request))


async def _server_error(request: Request, exc: Exception) -> Response:
    """A bug, not bad input: logged with its traceback, answered without internals."""
    log.exception("unexpected error in %s", instance_of(request) or "a request")
    detail = "the ledger failed to answer; retry a command with the same Idempotency-Key"
    problem = ProblemError(500, "Internal error", detail)
    return problem.response(instance_of(request))


async def _codec_error(request: Request, exc: Exception) -> Response:
    problem = ProblemError(422, "Unencodable event", str(exc), kind="unencodable-event")
    return problem.response(instance_of(request))


def routes() -> list[Route]:
    # the router tries routes in order: the decision and the commands, called before every
    # send and for every change, come first
    out = [Route("/v1/decision", read.decision, methods=["GET"])]
    out += [
        Route(
            f"/v1/subjects/{{subject_id}}/{path}",
            command_endpoint(path, build),
            methods=["POST"],
        )
        for path, build in COMMANDS.items()
    ]
    out += [
        Route("/v1/subjects/{subject_id}/identifiers", identifiers.link, methods=["POST"]),
        Route("/v1/subjects/{subject_id}/identifiers", identifiers.unlink, methods=["DELETE"]),
        Route("/v1/decisions/batch", batch.batch_decisions, methods=["POST"]),
        Route("/v1/subjects/{subject_id}/consent", read.consent_state, methods=["GET"]),
        Route("/v1/subjects/{subject_id}/events", read.subject_events, methods=["GET"]),
        Route(verify.PATH, verify.verify_subject, methods=["GET"]),
        Route(exports.HISTORY_PATH, exports.history, methods=["GET"]),
        Route(exports.EXPORT_PATH, exports.export, methods=["GET"]),
        Route("/v1/purposes", read.purposes, methods=["GET"]),
        Route(suppressions.PATH, suppressions.suppressions, methods=["GET"]),
        Route("/healthz", read.healthz, methods=["GET"]),
        Route("/readyz", readiness.readyz, methods=["GET"]),
        Route("/openapi.json", _openapi, methods=["GET"]),
        Route("/v1/unsubscribe-links", unsubscribe.create_links, methods=["POST"]),
        Route("/u/{token}", pages.unsubscribe, methods=["GET", "POST"]),
        Route("/p/{token}", pages.preferences, methods=["GET", "POST"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Route(erasure.PATH, erasure.erase, methods=["POST"]),
        Route(requests.PATH, requests.receive_request, methods=["POST"]),
        Route(requests.PATH, requests.list_requests, methods=["GET"]),
        Route(requests.ITEM_PATH, requests.show_request, methods=["GET"]),
        *(
            Route(f"{requests.ITEM_PATH}/{step}", requests.step_endpoint(step), methods=["POST"])
            for step in requests.STEP_NAMES
        ),
        Route("/v1/notices", notices.publish, methods=["POST"]),
        Route("/v1/notices", notices.list_notices, methods=["GET"]),
        Route(notices.RECONSENT_PATH, notices.reconsent, methods=["GET"]),
        Route("/v1/receipts/{event_id}", receipts.receipt, methods=["GET"]),
        Route(receipts.JWKS_PATH, receipts.jwks, methods=["GET"]),
        Route(audit.PATH, audit.subject, methods=["GET"]),
        Route(access_log.PATH, access_log.access_log, methods=["GET"]),
    ]
    # each lookup route's POST twin runs the GET route's handler (services/api/lookups.py)
    lookups = {
        r.path: r.endpoint for r in out if r.path in POST_TWINS and "GET" in (r.methods or ())
    }
    out += [
        Route(POST_TWINS[path], endpoint, methods=["POST"]) for path, endpoint in lookups.items()
    ]
    return out


async def _openapi(request: Request) -> JSONResponse:
    state = request.app.state
    if not hasattr(state, "openapi"):
        state.openapi = openapi_document(state.ledger.catalogue)
    return JSONResponse(state.openapi)


def create_app(settings: Settings, open_fn: LedgerFactory = open_ledger) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.ledger = ledger = await open_fn(settings)
        if settings.public_url_problem:
            log.warning("POST /v1/unsubscribe-links is refused: %s", settings.public_url_problem)
        hash_key = ledger.secrets.api_key_hash_key
        keys = KeyCache(ledger.pool, settings.api_key_refresh_s, hash_key)
        try:
            if settings.admin_key:
                registered = await register_admin_key(ledger.pool, settings.admin_key, hash_key)
                if registered.row.revoked_at is not None:
                    log.warning("LEDGER_ADMIN_KEY (key %s) is revoked", registered.row.key_id)
            await keys.start(database_connector(settings))
            warn_forgotten_admin_keys(keys.rows.values(), settings.admin_key)
            app.state.api_keys = keys
            # what start-up made lives as long as the process: the collector stops scanning it
            gc.freeze()
            yield
        finally:
            await keys.close()
            await close_ledger(ledger)

    page_limits = PageLimits.from_settings(settings)
    app = ObservedStarlette(
        routes=protect(routes(), settings, page_limits),
        middleware=public_listener_middleware(settings),
        lifespan=lifespan,
        exception_handlers={
            ProblemError: problem_handler,
            HTTPException: _http_problem,
            CodecError: _codec_error,
            asyncpg.PostgresConnectionError: _dependency_down,
            asyncpg.InterfaceError: _dependency_down,
            asyncpg.exceptions.CannotConnectNowError: _dependency_down,
            asyncpg.exceptions.OperatorInterventionError: _dependency_down,
            ConnectionError: _dependency_down,
            OSError: _dependency_down,
            TimeoutError: _dependency_down,
            Exception: _server_error,
        },
    )
    # the pages' buckets: the guard spends the address and link ones, the preference page
    # the subject's (services/web/page_limits.py)
    app.state.page_limits = page_limits
    return app
