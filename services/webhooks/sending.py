"""One HTTP attempt of a webhook delivery, with the receiver's address checked as it connects.

The host is resolved here and every address it resolves to must pass
services/rules/webhook_urls.py `address_allowed`; the connection is then made to a checked
address (TLS still verifies the certificate against the URL's host name), so a name that
resolves to an allowed address when checked and a private one when connected (DNS rebinding)
reaches nothing. Redirects are not followed: a 3xx is a failed attempt. Each subscription has
connections and name resolutions of its own, so a slow receiver or its DNS delays no other.

Design: docs/developers/design/webhooks.md
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final
from uuid import UUID

import httpcore

from projections.webhook_deliveries import FAILED, REFUSED, SUCCEEDED, TIMEOUT, Attempt
from services.rules.webhook_urls import address_allowed, check_url

#: the longest error text kept with an attempt (it never holds the request or response body)
ERROR_CHARS: Final = 300
#: threads resolving receivers' host names (getaddrinfo blocks its thread)
DNS_THREADS: Final = 32
#: a subscription's resolutions at once: one whose DNS hangs ties up at most this many threads
DNS_PER_SUBSCRIPTION: Final = 2
#: the longest a name resolution may take (an attempt still waiting fails as a timeout)
DNS_TIMEOUT_S: Final = 5.0
#: a subscription's connections are closed once it has sent nothing for this long
IDLE_POOL_S: Final = 60.0

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: a host name's addresses, for connecting to a checked one
Resolve = Callable[[str, int], Awaitable[list[IPAddress]]]


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

    def __init__(self, rules: AddressRules, resolve: Resolve | None = None) -> None:
        self.rules = rules
        self.resolve = resolve or _resolve
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self.resolve(host, port)
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


async def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except socket.gaierror as exc:
        raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
    return _addresses(infos)


def _addresses(infos: Iterable[tuple[Any, ...]]) -> list[IPAddress]:
    found = dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos)
    return list(found)


def _getaddrinfo(host: str, port: int) -> list[tuple[Any, ...]]:
    return list(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP))


class Resolver:
    """getaddrinfo on threads of its own (not the loop's default executor, which the rest of
    the process shares), at most DNS_PER_SUBSCRIPTION at once per subscription, each waited
    for at most DNS_TIMEOUT_S: a subscription whose DNS hangs holds at most that many of
    DNS_THREADS threads, and only its own attempts wait. `lookup` is getaddrinfo's stand-in."""

    def __init__(self, lookup: Callable[[str, int], list[tuple[Any, ...]]] = _getaddrinfo) -> None:
        self.lookup = lookup
        self.executor = ThreadPoolExecutor(DNS_THREADS, thread_name_prefix="webhook-dns")

    def for_subscription(self) -> Resolve:
        return functools.partial(self.resolve, asyncio.Semaphore(DNS_PER_SUBSCRIPTION))

    async def resolve(self, slots: asyncio.Semaphore, host: str, port: int) -> list[IPAddress]:
        try:
            async with asyncio.timeout(DNS_TIMEOUT_S):
                await slots.acquire()
                found = asyncio.get_running_loop().run_in_executor(
                    self.executor, self.lookup, host, port
                )
                # the slot is the thread's: free only when getaddrinfo returns, timed out or not
                found.add_done_callback(lambda f: _settle(f, slots))
                infos = await asyncio.shield(found)
        except TimeoutError:
            raise httpcore.ConnectTimeout(
                f"{host} not resolved within {DNS_TIMEOUT_S:g} s"
            ) from None
        except socket.gaierror as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        return _addresses(infos)

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


def _settle(future: asyncio.Future[Any], slots: asyncio.Semaphore) -> None:
    slots.release()
    if not future.cancelled():
        future.exception()  # retrieved: an abandoned lookup's error is no loop warning


@dataclass(slots=True)
class _Connections:
    pool: httpcore.AsyncConnectionPool
    in_flight: int = 0
    used_at: float = field(default_factory=time.monotonic)


class Sender:
    """Sends attempts over a connection pool per subscription (keep-alive per receiver; at
    most `max_connections` each, which the dispatcher sets to its concurrency, so an attempt
    never waits for a connection another receiver holds), checking every URL and every
    address it connects to."""

    def __init__(
        self,
        rules: AddressRules,
        timeout_s: float,
        max_connections: int,
        resolver: Resolver | None = None,
    ) -> None:
        self.rules = rules
        self.timeout_s = timeout_s
        self.max_connections = max_connections
        self.resolver = resolver or Resolver()
        self.ssl_context = ssl.create_default_context()
        self.connections: dict[UUID, _Connections] = {}

    def _connections(self, subscription_id: UUID) -> _Connections:
        found = self.connections.get(subscription_id)
        if found is None:
            pool = httpcore.AsyncConnectionPool(
                ssl_context=self.ssl_context,
                max_connections=self.max_connections,
                network_backend=CheckedBackend(self.rules, self.resolver.for_subscription()),
                retries=0,
            )
            found = self.connections[subscription_id] = _Connections(pool)
        return found

    async def close_idle(self) -> None:
        """Close the connections of subscriptions that sent nothing for IDLE_POOL_S."""
        now = time.monotonic()
        for sid, c in list(self.connections.items()):
            if c.in_flight == 0 and now - c.used_at > IDLE_POOL_S:
                del self.connections[sid]
                await c.pool.aclose()

    async def close(self) -> None:
        for c in self.connections.values():
            await c.pool.aclose()
        self.connections.clear()
        self.resolver.close()

    async def post(
        self, subscription_id: UUID, url: str, headers: Mapping[str, str], body: bytes
    ) -> Attempt:
        """POST `body` over the subscription's connections; the attempt's outcome: succeeded
        (2xx), failed (another status, the exchange broke, or anything else went wrong),
        timeout, or refused (URL or address not allowed, connection refused)."""
        started_at = datetime.now(UTC)
        started = time.perf_counter()

        def attempt(code: int | None, outcome: str, error: str | None) -> Attempt:
            ms = round((time.perf_counter() - started) * 1000)
            return Attempt(started_at, ms, code, outcome, error and error[:ERROR_CHARS])

        connections = self._connections(subscription_id)
        connections.in_flight += 1
        try:
            return await self._post(connections.pool, url, headers, body, attempt)
        except Exception as exc:  # any failure is a failed attempt, retried on the schedule
            return attempt(None, FAILED, f"the attempt failed: {type(exc).__name__}: {exc}")
        finally:
            connections.in_flight -= 1
            connections.used_at = time.monotonic()

    async def _post(
        self,
        pool: httpcore.AsyncConnectionPool,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        attempt: Callable[[int | None, str, str | None], Attempt],
    ) -> Attempt:
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
                async with pool.stream(
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
        except TimeoutError:
            return attempt(None, TIMEOUT, f"no answer within {limit:g} s")
        except httpcore.TimeoutException as exc:
            return attempt(None, TIMEOUT, str(exc) or f"no answer within {limit:g} s")
        except httpcore.ConnectError as exc:
            return attempt(None, REFUSED, f"could not connect: {exc}")
        except (httpcore.ProtocolError, httpcore.NetworkError, OSError) as exc:
            return attempt(None, FAILED, f"the exchange broke: {exc or type(exc).__name__}")
        if 200 <= code < 300:
            return attempt(code, SUCCEEDED, None)
        return attempt(code, FAILED, f"answered {code}")
