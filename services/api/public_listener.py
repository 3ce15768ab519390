"""The public-pages listener (LEDGER_PUBLIC_PORT): a second socket of the same API process that
answers only what people reach from the internet, so that port exposes nothing else.

The unsubscribe and preference pages (`/u/`, `/p/`) must face the internet (RFC 8058); the
keyed API, the auditor's page, /readyz's details, /openapi.json and /metrics need not. With
the setting on, uvicorn serves two sockets and this pure-ASGI check, before routing, answers a
request that arrived on the public port for any other path with the same 404 an unknown path
gets. What the public port serves is declared once: the TOKEN_PAGE routes of
services/api/route_table.py, and /healthz (an empty liveness answer a load balancer in front of
the public port can probe; /readyz is not served there).
"""

from __future__ import annotations

import logging
import re
import socket
from typing import Final

from starlette.middleware import Middleware
from starlette.routing import compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

from services.api import collect
from services.api.access import ROUTE_ACCESS
from services.config import Settings
from services.http.problems import ProblemError
from services.http.route_spec import TOKEN_PAGE
from services.web import consent_script

log = logging.getLogger(__name__)

#: route templates served on the public port besides the token pages: health, and the banner
#: script that websites' pages import
ALSO_PUBLIC: Final = frozenset(
    {"/healthz", consent_script.LATEST_PATH, consent_script.FILE_PATH, collect.PATH}
)
PUBLIC_ROUTES: Final = frozenset(
    {path for (_, path), level in ROUTE_ACCESS.items() if level == TOKEN_PAGE} | ALSO_PUBLIC
)
_PATTERNS: Final[tuple[re.Pattern[str], ...]] = tuple(
    compile_path(path)[0] for path in sorted(PUBLIC_ROUTES)
)


def served_publicly(path: str) -> bool:
    """Whether a request path may be answered on the public port."""
    return any(pattern.match(path) for pattern in _PATTERNS)


def arrived_on(scope: Scope) -> int | None:
    """The local port of the socket a request arrived on."""
    server = scope.get("server")
    return int(server[1]) if server else None


class PublicListenerOnly:
    """Answer 404 to every request on `port` whose path is not served publicly."""

    def __init__(self, app: ASGIApp, port: int) -> None:
        self.app = app
        self.port = port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and arrived_on(scope) == self.port
            and not served_publicly(scope["path"])
        ):
            response = ProblemError(404, "Not found", "Not Found").response()
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def public_listener_middleware(settings: Settings) -> list[Middleware]:
    """The check, when LEDGER_PUBLIC_PORT is set."""
    if not settings.public_port:
        return []
    return [Middleware(PublicListenerOnly, port=settings.public_port)]


def _bound(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def listener_sockets(settings: Settings) -> list[socket.socket]:
    """The API's socket (LEDGER_HOST:LEDGER_PORT) and the public pages' one
    (LEDGER_PUBLIC_HOST:LEDGER_PUBLIC_PORT), bound, for uvicorn to serve both."""
    api = _bound(settings.host, settings.port)
    try:
        public = _bound(settings.public_host, settings.public_port)
    except OSError:
        api.close()
        raise
    log.info(
        "API on %s:%d; public pages only on %s:%d",
        settings.host,
        settings.port,
        settings.public_host,
        settings.public_port,
    )
    return [api, public]
