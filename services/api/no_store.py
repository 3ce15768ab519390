"""`Cache-Control: no-store` on every answer under /v1, in one place.

The API's answers name subjects, their decisions and, in exports, their decrypted addresses: no
browser, proxy or CDN cache may keep one, whatever route, status or error produced it. A pure
ASGI wrapper sets the header on the way out, replacing any other Cache-Control, so a new route
cannot forget it.
"""

from __future__ import annotations

from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_PREFIX: Final = "/v1"
CACHE_CONTROL: Final = b"cache-control"
NO_STORE: Final = b"no-store"


def is_api_path(path: str) -> bool:
    return path == API_PREFIX or path.startswith(API_PREFIX + "/")


class NoStoreOnApi:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_api_path(scope["path"]):
            await self.app(scope, receive, send)
            return

        async def send_no_store(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", ()) if k.lower() != CACHE_CONTROL]
                message = {**message, "headers": [*kept, (CACHE_CONTROL, NO_STORE)]}
            await send(message)

        await self.app(scope, receive, send_no_store)
