"""A TLS and SASL front for the embedded broker: the tests of the KAFKA_* security settings
need a broker that terminates TLS and runs a real SCRAM exchange, and Tansu 0.6.0 does neither.

Its `--cert` and `--key` options exclude each other and its listener never wraps TLS. With
`--authentication` it refuses every unauthenticated request, but its memory storage keeps no
SCRAM credentials (`tansu user create` is accepted and stored nowhere) and its build has no
PLAIN, so nobody can log in (tests/integration/test_kafka_security.py shows both refusals).

The front listens on the port the broker advertises (EmbeddedKafka(advertised_port=...)), so a
client's every connection passes it. It terminates TLS (optionally requiring a client
certificate), answers ApiVersions through the broker, runs SaslHandshake and SaslAuthenticate
itself (SCRAM-SHA-256 and SCRAM-SHA-512 through scramp, an implementation independent of
aiokafka's client; PLAIN), and relays bytes to the broker only after a client authenticated.
Any other request before that closes the connection, as Kafka does.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ssl
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from scramp import ScramException, ScramMechanism
from scramp.core import ScramServer

API_VERSIONS: Final = 18
SASL_HANDSHAKE: Final = 17
SASL_AUTHENTICATE: Final = 36
UNSUPPORTED_SASL_MECHANISM: Final = 33
ILLEGAL_SASL_STATE: Final = 34
SASL_AUTHENTICATION_FAILED: Final = 58
SCRAM: Final = ("SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass
class FrontLog:
    """What the front saw: who logged in with what, and who was turned away before the broker."""

    authenticated: list[tuple[str, str]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


class KafkaFront:
    def __init__(
        self,
        upstream_port: int,
        port: int,
        *,
        tls: ssl.SSLContext | None = None,
        users: Mapping[str, str] | None = None,
    ) -> None:
        """`users` (name -> password) makes the front require SASL; None relays at once."""
        self.upstream_port = upstream_port
        self.port = port
        self.tls = tls
        self.users = users
        self.log = FrontLog()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, ssl=self.tls)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        upstream_w: asyncio.StreamWriter | None = None
        try:
            upstream_r, upstream_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
            if self.users is not None:
                session = _SaslSession(self.users, self.log)
                if not await session.run(client_r, client_w, upstream_r, upstream_w):
                    return
            await asyncio.gather(_copy(client_r, upstream_w), _copy(upstream_r, client_w))
        except (OSError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            for writer in (client_w, upstream_w):
                if writer is not None:
                    writer.close()
            self._tasks.discard(task)


async def _copy(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while chunk := await source.read(65536):
            sink.write(chunk)
            await sink.drain()
    with contextlib.suppress(OSError):
        sink.close()


@dataclass
class _SaslSession:
    users: Mapping[str, str]
    log: FrontLog
    mechanism: str = ""
    user: str = ""
    scram: ScramServer | None = None

    async def run(
        self,
        client_r: asyncio.StreamReader,
        client_w: asyncio.StreamWriter,
        upstream_r: asyncio.StreamReader,
        upstream_w: asyncio.StreamWriter,
    ) -> bool:
        """Handle requests until the client authenticated (True) or must go (False)."""
        while True:
            frame = await _read_frame(client_r)
            api_key, version, correlation_id = struct.unpack_from(">hhi", frame)
            (client_id_length,) = struct.unpack_from(">h", frame, 8)
            body = frame[10 + max(client_id_length, 0) :]
            if api_key == API_VERSIONS:
                upstream_w.write(struct.pack(">i", len(frame)) + frame)
                await upstream_w.drain()
                answer = await _read_frame(upstream_r)
                client_w.write(struct.pack(">i", len(answer)) + answer)
            elif api_key == SASL_HANDSHAKE and version >= 1:
                client_w.write(_frame(correlation_id, self.handshake(_string(body, 0)[0])))
            elif api_key == SASL_AUTHENTICATE and self.mechanism and version in (0, 1):
                (length,) = struct.unpack_from(">i", body)
                error, reply = self.authenticate(body[4 : 4 + length])
                client_w.write(_frame(correlation_id, _authenticate_answer(version, error, reply)))
                await client_w.drain()
                if error:
                    self.log.refused.append(f"{self.mechanism} {self.user or '?'}: {error}")
                    return False
                if self.scram is None:  # done: PLAIN at once, SCRAM after its final message
                    self.log.authenticated.append((self.user, self.mechanism))
                    return True
            else:
                self.log.refused.append(f"api key {api_key} before authentication")
                return False
            await client_w.drain()

    def handshake(self, mechanism: str) -> bytes:
        offered = ("PLAIN", *SCRAM)
        listed = struct.pack(">i", len(offered)) + b"".join(_pack_string(m) for m in offered)
        if mechanism not in offered:
            return struct.pack(">h", UNSUPPORTED_SASL_MECHANISM) + listed
        self.mechanism = mechanism
        return struct.pack(">h", 0) + listed

    def authenticate(self, token: bytes) -> tuple[str, bytes]:
        """(error, reply): error is empty when the step succeeded."""
        if self.mechanism == "PLAIN":
            _, user, password = token.decode("utf-8").split("\0")
            self.user = user
            expected = self.users.get(user)
            if expected is None or not hmac.compare_digest(expected, password):
                return "wrong user name or password", b""
            return "", b""
        if self.scram is None:
            mechanism = ScramMechanism(self.mechanism)

            def credentials(name: str) -> tuple[bytes, bytes, bytes, int]:
                self.user = name
                salt, stored_key, server_key, iterations = mechanism.make_auth_info(
                    self.users[name]
                )
                return salt, stored_key, server_key, iterations

            server = mechanism.make_server(credentials)
            try:
                server.set_client_first(token.decode("utf-8"))
            except (ScramException, KeyError):
                return "unknown user", b""
            self.scram = server
            return "", server.get_server_first().encode("utf-8")
        server, self.scram = self.scram, None
        try:
            server.set_client_final(token.decode("utf-8"))
        except ScramException:
            return "wrong password", b""
        return "", server.get_server_final().encode("utf-8")


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    (size,) = struct.unpack(">i", await reader.readexactly(4))
    return await reader.readexactly(size)


def _frame(correlation_id: int, body: bytes) -> bytes:
    payload = struct.pack(">i", correlation_id) + body
    return struct.pack(">i", len(payload)) + payload


def _pack_string(text: str | None) -> bytes:
    if text is None:
        return struct.pack(">h", -1)
    raw = text.encode("utf-8")
    return struct.pack(">h", len(raw)) + raw


def _string(data: bytes, at: int) -> tuple[str, int]:
    (length,) = struct.unpack_from(">h", data, at)
    return data[at + 2 : at + 2 + length].decode("utf-8"), at + 2 + length


def _authenticate_answer(version: int, error: str, reply: bytes) -> bytes:
    code = SASL_AUTHENTICATION_FAILED if error else 0
    out = struct.pack(">h", code) + _pack_string(error or None)
    out += struct.pack(">i", len(reply)) + reply
    if version >= 1:
        out += struct.pack(">q", 0)  # session lifetime: no re-authentication
    return out
