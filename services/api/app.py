"""The Starlette application: its routes behind the access check, error handling and the lifespan
that opens the ledger."""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from schemas.codec import CodecError
from services.api.guard import protect
from services.api.observation import ObservedStarlette
from services.api.public_listener import public_listener_middleware
from services.api.route_table import ROUTES
from services.bootstrap import Ledger, close_ledger, database_connector, open_ledger
from services.config import Settings
from services.http.ledger_problems import ledger_problem
from services.http.problems import ProblemError, instance_of, problem_handler, unavailable
from services.http.route_spec import starlette_routes
from services.http.staff_auth import Clock, StaffSessions, utc_now
from services.identity.api_key_store import KeyCache, register_admin_key, warn_forgotten_admin_keys
from services.ledger.errors import LedgerError
from services.web.page_limits import PageLimits

log = logging.getLogger(__name__)

LedgerFactory = Callable[[Settings], Awaitable[Ledger]]
#: the API keys a request's key is checked against, open while the app serves
KeysFactory = Callable[[Ledger, Settings], contextlib.AbstractAsyncContextManager[KeyCache]]


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


async def _ledger_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LedgerError)
    problem = ledger_problem(exc, keyed="idempotency-key" in request.headers)
    return problem.response(instance_of(request))


def routes() -> list[Route]:
    """The router's routes, unguarded, from the route table (services/api/route_table.py)."""
    return starlette_routes(ROUTES)


@contextlib.asynccontextmanager
async def stored_keys(ledger: Ledger, settings: Settings) -> AsyncIterator[KeyCache]:
    """The keys of the `api_keys` table, LEDGER_ADMIN_KEY registered among them, kept in
    memory and reloaded on NOTIFY (services/identity/api_key_store.py)."""
    hash_key = ledger.secrets.api_key_hash_key
    keys = KeyCache(ledger.pool, settings.api_key_refresh_s, hash_key)
    try:
        if settings.admin_key:
            registered = await register_admin_key(ledger.pool, settings.admin_key, hash_key)
            if registered.row.revoked_at is not None:
                log.warning("LEDGER_ADMIN_KEY (key %s) is revoked", registered.row.key_id)
        await keys.start(database_connector(settings))
        warn_forgotten_admin_keys(keys.rows.values(), settings.admin_key)
        yield keys
    finally:
        await keys.close()


def create_app(
    settings: Settings,
    open_fn: LedgerFactory = open_ledger,
    keys_fn: KeysFactory = stored_keys,
    clock: Clock = utc_now,
) -> Starlette:
    """The API. `open_fn` opens the ledger and `keys_fn` the API keys: the lifespan's two
    resources, which in-process tests replace with in-memory ones (tests/unit/services/api/);
    `clock` is the staff sessions' (tests drive it past their timeouts)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.ledger = ledger = await open_fn(settings)
        if settings.public_url_problem:
            log.warning("POST /v1/unsubscribe-links is refused: %s", settings.public_url_problem)
        try:
            async with keys_fn(ledger, settings) as keys:
                app.state.api_keys = keys
                # what start-up made lives as long as the process: the collector stops scanning it
                gc.freeze()
                yield
        finally:
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
            LedgerError: _ledger_error,
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
    app.state.staff_sessions = StaffSessions.from_settings(settings, clock)
    return app
