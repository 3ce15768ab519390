"""One HTTP attempt of a webhook delivery, with the receiver's address checked as it connects.

The host is resolved here and every address it resolves to must pass
services/rules/webhook_urls.py `address_allowed`; the connection is then made to a checked
address (TLS still verifies the certificate against the URL's host name), so a name that
resolves to an allowed address when checked and a private one when connected (DNS rebinding)
reaches nothing. Redirects are not followed: a 3xx is a failed attempt.

Design: docs/developers/design/webhooks.md
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import httpcore

from projections.webhook_deliveries import FAILED, REFUSED, SUCCEEDED, TIMEOUT, Attempt
from services.rules.webhook_urls import address_allowed, check_url

#: the longest error text kept with an attempt (it never holds the request or response body)
ERROR_CHARS: Final = 300


class AddressRefused(Exception):
    """The receiver's host resolves to an address the dispatcher may not connect to."""


@dataclass(frozen=True, slots=True)
class AddressRules:
    allow_loopback: bool
    allow_private: bool

    def allowed(self, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return address_allowed(
            ip, allow_loopback=self.allow_loopback, allow_private=self.allow_private
        )


class CheckedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend with the address check between resolving and connecting."""

    def __init__(self, rules: AddressRules) -> None:
        self.rules = rules
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await _resolve(host, port)
        refused = [a for a in addresses if not self.rules.allowed(a)]
        if refused or not addresses:
            raise AddressRefused(
                f"{host} resolves to an address deliveries may not reach: {refused[0]}"
                if refused
                else f"{host} resolves to no address"
            )
        last: Exception | None = None
        for address in addresses:
            try:
                return await self.inner.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as exc:  # try the host's next address
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise AddressRefused("deliveries go to TCP addresses only")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


async def _resolve(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except socket.gaierror as exc:
        raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
    found = dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos)
    return list(found)


class Sender:
    """Sends attempts over one connection pool (keep-alive per receiver), checking every URL
    and every address it connects to."""

    def __init__(self, rules: AddressRules, timeout_s: float, max_connections: int) -> None:
        self.rules = rules
        self.timeout_s = timeout_s
        self.pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl.create_default_context(),
            max_connections=max_connections,
            network_backend=CheckedBackend(rules),
            retries=0,
        )

    async def close(self) -> None:
        await self.pool.aclose()

    async def post(self, url: str, headers: Mapping[str, str], body: bytes) -> Attempt:
        """POST `body`; the attempt's outcome: succeeded (2xx), failed (another status, or the
        exchange broke), timeout, or refused (URL or address not allowed, connection refused)."""
        started_at = datetime.now(UTC)
        started = time.perf_counter()

        def attempt(code: int | None, outcome: str, error: str | None) -> Attempt:
            ms = round((time.perf_counter() - started) * 1000)
            return Attempt(started_at, ms, code, outcome, error and error[:ERROR_CHARS])

        try:
            checked = check_url(
                url,
                allow_loopback_http=self.rules.allow_loopback,
                allow_private=self.rules.allow_private,
            )
        except ValueError as exc:
            return attempt(None, REFUSED, f"URL not allowed: {exc}")
        limit = self.timeout_s
        try:
            async with asyncio.timeout(limit):
                async with self.pool.stream(
                    "POST",
                    checked,
                    headers=[(k.encode(), v.encode()) for k, v in headers.items()],
                    content=body,
                    extensions={
                        "timeout": dict.fromkeys(("connect", "read", "write", "pool"), limit)
                    },
                ) as response:
                    code = response.status
        except AddressRefused as exc:
            return attempt(None, REFUSED, str(exc))
        except (TimeoutError, httpcore.TimeoutException):
            return attempt(None, TIMEOUT, f"no answer within {limit:g} s")
        except httpcore.ConnectError as exc:
            return attempt(None, REFUSED, f"could not connect: {exc}")
        except (httpcore.ProtocolError, httpcore.NetworkError, OSError) as exc:
            return attempt(None, FAILED, f"the exchange broke: {exc or type(exc).__name__}")
        if 200 <= code < 300:
            return attempt(code, SUCCEEDED, None)
        return attempt(code, FAILED, f"answered {code}")
