"""A streamed answer with two deadlines: one for the whole stream, one for each chunk a client
takes. A client that stops reading (or a stream that runs too long) would otherwise hold what
the stream holds, such as a pooled PostgreSQL connection, for as long as it likes.

Past either deadline the body's generator is closed (its `finally` frees what it holds) and
the response ends without HTTP's final chunk, so the client sees a broken transfer, never a
short list that looks whole. Whatever happens, `on_end` is told how the stream ended once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Callable, Mapping
from contextlib import aclosing
from typing import Final

from starlette.responses import StreamingResponse
from starlette.types import Send

log = logging.getLogger(__name__)

#: why a stream was cut: the whole stream's deadline passed; a chunk waited too long for the
#: client; the request was cancelled (the client left, or the server stops); the body failed
DEADLINE: Final = "deadline"
IDLE: Final = "idle"
CANCELLED: Final = "cancelled"
FAILED: Final = "failed"


class BoundedStreamingResponse(StreamingResponse):
    """A StreamingResponse whose body, an async generator, is cut when the event loop's clock
    passes `deadline_at` or when one chunk waits `idle_s` for the client. `on_end` gets None
    when every chunk and the final one were handed to the server, else why the stream was cut."""

    def __init__(
        self,
        body: AsyncGenerator[bytes, None],
        *,
        deadline_at: float,
        idle_s: float,
        on_end: Callable[[str | None], None],
        media_type: str,
        headers: Mapping[str, str],
    ) -> None:
        super().__init__(body, media_type=media_type, headers=headers)
        self._body = body
        self._deadline_at = deadline_at
        self._idle_s = idle_s
        self._on_end = on_end

    async def stream_response(self, send: Send) -> None:
        reason: str | None = FAILED
        try:
            start = {"type": "http.response.start", "status": self.status_code}
            await send({**start, "headers": self.raw_headers})
            reason = await self._send_body(send)
        except asyncio.CancelledError:
            reason = CANCELLED
            raise
        finally:
            try:
                await self._body.aclose()  # never started: its `finally` has nothing to free
            finally:
                if reason is not None:
                    log.warning("stream cut: %s", reason)
                self._on_end(reason)

    async def _send_body(self, send: Send) -> str | None:
        whole = asyncio.timeout_at(self._deadline_at)
        try:
            async with aclosing(self._body) as body, whole:
                async for chunk in body:
                    if not await self._send(send, chunk, more=True):
                        return IDLE
        except TimeoutError:
            if not whole.expired():
                raise
            return DEADLINE
        return None if await self._send(send, b"", more=False) else IDLE

    async def _send(self, send: Send, chunk: bytes, *, more: bool) -> bool:
        """False when the client took no chunk for `idle_s`."""
        try:
            async with asyncio.timeout(self._idle_s):
                await send({"type": "http.response.body", "body": chunk, "more_body": more})
        except TimeoutError:
            return False
        return True
