"""JSON bodies: any body the decoder cannot take is a 400 problem, never a 500, and a large body
is decoded by the standard library's Python scanner in a worker thread, giving what json.loads
gives."""

from __future__ import annotations

import json
import math
import threading
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.requests import Request
from starlette.types import Message

from services.api import json_body
from services.api.batch_request import MAX_BODY as BATCH_BODY
from services.api.body import read_json_object
from services.api.json_body import MAX_CONTAINERS, ON_LOOP_MAX, TooManyContainers, decode_large
from services.api.problems import ProblemError

P = pytest.param

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=40,
)


@given(json_values)
def test_the_python_scanner_decodes_what_json_loads_decodes(value: Any) -> None:
    raw = json.dumps(value).encode()
    assert decode_large(raw) == json.loads(raw)


@pytest.mark.parametrize(
    "raw",
    [
        P(b'{"a": }', id="syntax"),
        P(b"[1, 2", id="unterminated"),
        P(b"\xff\xfe\x00", id="not-utf"),
        P("[1٣]".encode(), id="a-non-ascii-digit"),
        P(b"9" * 5000, id="past-the-digit-limit"),
        P(b"[" * 32_000, id="deep"),
        P(b"[" + b"[]," * MAX_CONTAINERS + b"[]]", id="too-many-containers"),
    ],
)
def test_a_body_json_cannot_take_raises_what_read_json_object_answers_400_to(raw: bytes) -> None:
    with pytest.raises((ValueError, RecursionError)):
        decode_large(raw)


def test_containers_are_counted() -> None:
    fits = b"[" + b"{}," * (MAX_CONTAINERS - 2) + b"{}]"
    assert len(decode_large(fits)) == MAX_CONTAINERS - 1
    with pytest.raises(TooManyContainers):
        decode_large(b"[" + b"{}," * (MAX_CONTAINERS - 1) + b"{}]")


async def test_a_large_body_is_decoded_in_a_worker_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[int] = []

    def recording(raw: bytes) -> Any:
        threads.append(threading.get_ident())
        return decode_large(raw)

    monkeypatch.setattr(json_body, "decode_large", recording)
    small = json.dumps({"a": "x" * (ON_LOOP_MAX - 20)}).encode()
    large = json.dumps({"a": "x" * ON_LOOP_MAX}).encode()
    assert await json_body.decode(small) == json.loads(small)
    assert threads == []
    assert await json_body.decode(large) == json.loads(large)
    assert len(threads) == 1 and threads[0] != threading.get_ident()


def request(body: bytes) -> Request:
    chunks = [body[i : i + 65536] for i in range(0, len(body), 65536)] or [b""]

    async def receive() -> Message:
        chunk = chunks.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    headers = [(b"content-type", b"application/json")]
    return Request({"type": "http", "method": "POST", "headers": headers}, receive)


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        P(b"[" * 32_000, "the body nests arrays and objects too deeply", id="deep"),
        P(b"[" * 70_000, "the body nests arrays and objects too deeply", id="deep-and-large"),
        P(b'{"n": ' + b"9" * 5000 + b"}", "the body holds a number", id="huge-number"),
        P(b'{"n": ' + b"9" * 70_000 + b"}", "the body holds a number", id="huge-and-large"),
        P(b"[" + b"[]," * 30_000 + b"[]]", "a body over 65536 bytes may hold at most 1000", id="n"),
        P(b'{"a": ', "the body is not valid JSON: Expecting value", id="syntax"),
    ],
)
async def test_an_undecodable_body_is_a_400(body: bytes, detail: str) -> None:
    with pytest.raises(ProblemError) as caught:
        await read_json_object(request(body), BATCH_BODY)
    assert (caught.value.status, caught.value.kind) == (400, "malformed-json")
    assert caught.value.detail.startswith(detail)


async def test_a_large_body_within_the_limits_is_read() -> None:
    body = {"subjects": [f"crm:{i}" for i in range(50_000)], "x": [1.5, math.pi]}
    raw = json.dumps(body).encode()
    assert len(raw) > ON_LOOP_MAX
    assert await read_json_object(request(raw), BATCH_BODY) == body
