"""Request ids: which X-Request-Id a caller may set, and the middleware that carries it."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.types import Message, Receive, Scope, Send

from services.api.observation import (
    UNMATCHED,
    RequestObservation,
    method_label,
    route_label,
    status_class,
)
from services.telemetry import api_metrics
from services.telemetry.request_context import (
    MAX_LENGTH,
    REQUEST_ID,
    current_request_id,
    new_request_id,
    request_id_for,
    usable_request_id,
)


@pytest.mark.parametrize(
    ("value", "usable"),
    [
        ("7f9c2ba4-e88f-4c1b-9e33-0a1c2d3e4f50", True),
        ("req-4711", True),
        ("a", True),
        ("x" * MAX_LENGTH, True),
        ("x" * (MAX_LENGTH + 1), False),
        ("", False),
        ("has space", False),
        ("tab\there", False),
        ("line\nbreak", False),
        ("ünicode", False),
        ("\x7f", False),
        ("ada@example.com", False),
        ("+358401234567", False),
        ("040-1234567", False),
        ("(040)1234567", False),
        ("12345", True),
        ("b2c-0401234567", True),
        (None, False),
    ],
)
def test_which_request_ids_are_kept(value: str | None, usable: bool) -> None:
    assert usable_request_id(value) is usable
    kept = request_id_for(value)
    assert (kept == value) is usable
    assert usable_request_id(kept)


@given(st.text(max_size=200))
def test_the_id_used_is_always_loggable(header: str) -> None:
    used = request_id_for(header)
    assert usable_request_id(used) and "@" not in used and len(used) <= MAX_LENGTH


def test_fresh_ids_are_distinct_and_usable() -> None:
    ids = {new_request_id() for _ in range(100)}
    assert len(ids) == 100 and all(usable_request_id(i) for i in ids)


class _Route:
    path = "/v1/subjects/{subject_id}/consent"


@pytest.mark.parametrize(
    ("scope", "label"),
    [({"route": _Route()}, "/v1/subjects/{subject_id}/consent"), ({}, UNMATCHED)],
)
def test_the_route_label_is_the_template(scope: Scope, label: str) -> None:
    assert route_label(scope) == label


@pytest.mark.parametrize(
    ("method", "label"), [("GET", "GET"), ("DELETE", "DELETE"), ("BREW", "other")]
)
def test_unknown_methods_share_one_label(method: str, label: str) -> None:
    assert method_label(method) == label


@pytest.mark.parametrize(
    ("status", "label"), [(200, "2xx"), (201, "2xx"), (422, "4xx"), (503, "5xx")]
)
def test_status_classes(status: int, label: str) -> None:
    assert status_class(status) == label


def _scope(headers: list[tuple[bytes, bytes]]) -> Scope:
    return {"type": "http", "method": "GET", "path": "/x/a@b.c", "headers": headers}


async def _run(headers: list[tuple[bytes, bytes]]) -> tuple[list[Message], list[str | None]]:
    """An inline ASGI app behind the middleware; what it sent and the id it saw."""
    seen: list[str | None] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = _Route()
        seen.append(current_request_id())
        logging.getLogger("consent_ledger.test").info("inside")
        start = {"type": "http.response.start", "status": 404, "headers": [(b"x-request-id", b"z")]}
        await send(start)
        await send({"type": "http.response.body", "body": b"{}"})

    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    await RequestObservation(app)(_scope(headers), receive, send)
    return sent, seen


async def test_the_middleware_answers_with_the_callers_id_and_counts_the_route(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    route = "/v1/subjects/{subject_id}/consent"
    before = api_metrics.request_seconds.count("GET", route, "4xx")
    sent, seen = await _run([(b"x-request-id", b"trace-1")])
    assert seen == ["trace-1"] and current_request_id() is None
    assert [v for k, v in sent[0]["headers"] if k == b"x-request-id"] == [b"trace-1"]
    assert api_metrics.request_seconds.count("GET", route, "4xx") == before + 1
    access = [r for r in caplog.records if r.name == "consent_ledger.access"]
    assert [r.getMessage().rsplit(" ", 1)[0] for r in access] == [f"GET {route} 404"]
    assert {getattr(r, "request_id", None) for r in caplog.records} == {"trace-1"}
    assert "a@b.c" not in caplog.text


async def test_an_unusable_id_is_replaced() -> None:
    sent, seen = await _run([(b"x-request-id", b"ada@example.com")])
    (answered,) = [v for k, v in sent[0]["headers"] if k == b"x-request-id"]
    assert seen == [answered.decode()] and answered != b"ada@example.com"
    assert REQUEST_ID.get() is None
