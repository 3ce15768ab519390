"""Every HTTP request, observed once: its request id, its latency on the per-route histogram
and one access-log line that names the route template, never the path or the query.

Design: docs/developers/design/http-layer.md
"""

from __future__ import annotations

import logging
import time
from typing import Any, Final

from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.api.no_store import NoStoreOnApi
from services.http import request_limits
from services.telemetry import api_metrics
from services.telemetry.request_context import (
    HEADER,
    REQUEST_ID,
    install_record_factory,
    request_id_for,
)

access_log = logging.getLogger("consent_ledger.access")

#: the route label of a request no route matched (an unknown path)
UNMATCHED: Final = "unmatched"
#: methods named in the method label; any other is `other`, so a client cannot add series
METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: routes a scraper or a load balancer calls every few seconds: their access lines are DEBUG
QUIET_ROUTES: Final = frozenset({"/healthz", "/readyz", "/metrics"})
_HEADER_NAME: Final = HEADER.encode("ascii")


def route_label(scope: Scope) -> str:
    """The matched route's path template (set by the router on the scope)."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else UNMATCHED


def method_label(method: str) -> str:
    return method if method in METHODS else "other"


def status_class(status: int) -> str:
    return f"{status // 100}xx"


def _header(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == _HEADER_NAME:
            try:
                return str(value.decode("ascii"))
            except UnicodeDecodeError:
                return None
    return None


class RequestObservation:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        install_record_factory()  # every log record carries the request id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = request_id_for(_header(scope))
        token = REQUEST_ID.set(request_id)
        status = 500
        encoded = request_id.encode("ascii")

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", ()) if k != _HEADER_NAME]
                message = {**message, "headers": [*headers, (_HEADER_NAME, encoded)]}
            await send(message)

        try:
            refused = request_limits.refusal(scope)
            if refused is None:
                await self.app(scope, receive, observed_send)
            else:
                await refused.response()(scope, receive, observed_send)
        finally:
            seconds = time.perf_counter() - started
            self._observe(scope, status, seconds)
            REQUEST_ID.reset(token)

    @staticmethod
    def _observe(scope: Scope, status: int, seconds: float) -> None:
        route, method = route_label(scope), method_label(scope["method"])
        api_metrics.request_seconds.observe(seconds, method, route, status_class(status))
        level = logging.DEBUG if route in QUIET_ROUTES else logging.INFO
        if access_log.isEnabledFor(level):
            duration_ms = round(seconds * 1000, 3)
            access_log.log(
                level,
                "%s %s %d %.1fms",
                method,
                route,
                status,
                duration_ms,
                extra={
                    "fields": {
                        "method": method,
                        "route": route,
                        "status": status,
                        "duration_ms": duration_ms,
                    }
                },
            )


class ObservedStarlette(Starlette):
    """Starlette with NoStoreOnApi and RequestObservation outside its error middleware (user
    middleware would sit inside it and miss the 500 answers; NoStoreOnApi outermost, so an
    answer the observation gives itself is no-store too), and no trailing-slash redirects:
    `/u/<token>/` is a 404 like any unknown path, never a 307 to a URL built from the Host
    header that skips the route's checks."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.router.redirect_slashes = False

    def build_middleware_stack(self) -> ASGIApp:
        return NoStoreOnApi(RequestObservation(super().build_middleware_stack()))
