"""A small keep-alive HTTP/1.1 client over asyncio streams, for the measurements wrk cannot
make (a command followed by the decision that must reflect it; one very large batch request).

It does only what those need (Content-Length bodies, no chunked encoding, no TLS) and so costs
the client little CPU, leaving the two cores to the servers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from urllib.parse import urlsplit


class HttpError(RuntimeError):
    pass


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str):
        self.reader = reader
        self.writer = writer
        self.host = host

    @classmethod
    async def open(cls, base_url: str) -> Connection:
        parts = urlsplit(base_url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        reader, writer = await asyncio.open_connection(host, port, limit=64 * 1024 * 1024)
        return cls(reader, writer, f"{host}:{port}")

    async def request(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
    ) -> tuple[int, bytes]:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        if body or method in ("POST", "PUT"):
            lines.append(f"Content-Length: {len(body)}")
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        length = None
        for line in header_lines:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
            elif name.strip().lower() == "transfer-encoding":
                raise HttpError(f"{method} {path}: chunked answers are not supported")
        if length is None:
            raise HttpError(f"{method} {path}: the answer has no Content-Length")
        return status, await self.reader.readexactly(length)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


class Pool:
    """Connections opened on demand, up to `size`, each used by one request at a time."""

    def __init__(self, base_url: str, size: int) -> None:
        self.base_url = base_url
        self.size = size
        self.opened: list[Connection] = []
        self.idle: asyncio.Queue[Connection] = asyncio.Queue()

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        if self.idle.empty() and len(self.opened) < self.size:
            conn = await Connection.open(self.base_url)
            self.opened.append(conn)
        else:
            conn = await self.idle.get()
        try:
            yield conn
        except BaseException:
            self.opened.remove(conn)
            await conn.close()
            raise
        else:
            self.idle.put_nowait(conn)

    async def close(self) -> None:
        for conn in self.opened:
            await conn.close()
        self.opened.clear()
