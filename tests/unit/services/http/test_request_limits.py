"""Oversized request targets and headers are answered by the outermost middleware itself: 414
or 431 as problem+json, before routing and before anything parses the request, with the
request id, the latency metric and the access line every answer gets."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from starlette.types import Message, Receive, Scope, Send

from services.api.observation import UNMATCHED, RequestObservation
from services.http.request_limits import (
    MAX_HEADERS,
    MAX_PATH,
    MAX_QUERY,
    header_bytes,
    longest_parameter,
    refusal,
)
from services.telemetry import api_metrics

P = pytest.param


def scope(
    path: bytes = b"/v1/decision",
    query: bytes = b"",
    headers: list[tuple[bytes, bytes]] | None = None,
) -> Scope:
    return {
        "type": "http",
        "method": "GET",
        "path": path.decode(),
        "raw_path": path,
        "query_string": query,
        "headers": headers if headers is not None else [(b"host", b"ledger")],
    }


def headers_of(size: int) -> list[tuple[bytes, bytes]]:
    """Header lines of exactly `size` bytes as sent (`name: value\\r\\n` each)."""
    value = b"v" * (size - len(b"x-filler") - 4)
    return [(b"x-filler", value)]


@pytest.mark.parametrize(
    ("made", "status", "detail"),
    [
        P(scope(), None, None, id="an-ordinary-request"),
        P(scope(path=b"/" + b"a" * (MAX_PATH - 1)), None, None, id="path-at-the-limit"),
        P(scope(path=b"/" + b"a" * MAX_PATH), 414, "the path is 8193 bytes", id="long-path"),
        P(scope(query=b"q" * MAX_QUERY), None, None, id="query-at-the-limit"),
        P(scope(query=b"q" * (MAX_QUERY + 1)), 414, "the query string is 8193", id="long-query"),
        P(scope(query=b"a=&" * 10_000), 414, "the query string is 30000", id="many-parameters"),
        P(scope(headers=headers_of(MAX_HEADERS)), None, None, id="headers-at-the-limit"),
        P(scope(headers=headers_of(MAX_HEADERS + 1)), 431, "the headers are 16385", id="big"),
        P(scope(headers=[(b"a", b"")] * 5000), 431, "the headers are 25000", id="many-headers"),
        P(
            scope(path=b"/" + b"a" * MAX_PATH, headers=headers_of(MAX_HEADERS + 1)),
            414,
            "the path",
            id="target-before-headers",
        ),
    ],
)
def test_refusal(made: Scope, status: int | None, detail: str | None) -> None:
    found = refusal(made)
    if status is None:
        assert found is None
        return
    assert found is not None
    assert (found.status, found.detail[: len(detail or "")]) == (status, detail)


@pytest.mark.parametrize(
    ("query", "named"),
    [
        P(b"purpose=newsletter&subject_id=" + b"a" * 9000, "subject_id", id="a-long-id"),
        P(b"email=" + b"x" * 9000 + b"&channel=email", "email", id="first-of-two"),
        P(b"a=&" * 4000, "a", id="many-repeated"),
        P(b"=" + b"v" * 9000, "(unnamed)", id="no-name"),
        P(b"n" * 9000, "(unnamed)", id="a-name-too-long-to-repeat"),
        P(b"%C3%A4=" + b"v" * 9000, "%C3%A4", id="encoded-name-as-sent"),
    ],
)
def test_a_long_query_names_its_longest_parameter(query: bytes, named: str) -> None:
    found = refusal(scope(query=query))
    assert found is not None and found.status == 414
    (error,) = found.errors
    assert error["field"] == named
    assert error["detail"].startswith(f"is {longest_parameter(query)[1]} bytes")


def test_the_longest_parameter_is_found_in_one_pass() -> None:
    query = b"&".join([b"a=1"] * 50_000 + [b"b=" + b"2" * 100])
    assert longest_parameter(query) == ("b", 102, 50_001)


def test_headers_are_counted_as_sent() -> None:
    assert header_bytes([(b"host", b"ledger"), (b"a", b"")]) == len(b"host: ledger\r\na: \r\n")


class Recorder:
    """An ASGI app standing for the routed application: it only notes that it was called."""

    def __init__(self) -> None:
        self.called = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.called = True
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


async def answer(made: Scope) -> Any:
    inner = Recorder()
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await RequestObservation(inner)(made, receive, send)
    start, body = sent[0], b"".join(m.get("body", b"") for m in sent[1:])
    return inner.called, start["status"], dict(start["headers"]), body


@pytest.mark.parametrize(
    ("made", "status", "kind"),
    [
        P(scope(query=b"subject_id=" + b"a" * 60_000), 414, "uri-too-long", id="query"),
        P(
            scope(path=b"/v1/subjects/" + b"a" * 60_000 + b"/consent"),
            414,
            "uri-too-long",
            id="path",
        ),
        P(scope(headers=headers_of(20_000)), 431, "headers-too-large", id="headers"),
    ],
)
async def test_the_middleware_answers_without_calling_the_app(
    made: Scope, status: int, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    seconds = api_metrics.request_seconds
    before = seconds.count("GET", UNMATCHED, "4xx")
    made["headers"] = [*made["headers"], (b"x-request-id", b"trace-7")]
    with caplog.at_level(logging.INFO, logger="consent_ledger.access"):
        called, got, headers, body = await answer(made)
    assert (called, got) == (False, status)
    assert headers[b"content-type"] == b"application/problem+json"
    problem = json.loads(body)
    assert problem["type"] == f"urn:consent-ledger:problem:{kind}"
    assert problem["status"] == status and "instance" not in problem
    assert headers[b"x-request-id"] == b"trace-7" == problem["http_request_id"].encode()
    assert seconds.count("GET", UNMATCHED, "4xx") == before + 1
    (line,) = [r for r in caplog.records if r.name == "consent_ledger.access"]
    assert line.fields == {  # type: ignore[attr-defined]
        "method": "GET",
        "route": UNMATCHED,
        "status": status,
        "duration_ms": line.fields["duration_ms"],  # type: ignore[attr-defined]
    }


async def test_a_request_within_the_limits_reaches_the_app() -> None:
    called, status, _, _ = await answer(scope(query=b"q" * MAX_QUERY))
    assert (called, status) == (True, 204)
