"""JSON bodies: any body the decoder cannot take is a 400 problem, never a 500, and a large body
is decoded by the standard library's Python scanner in a worker thread, giving what json.loads
gives."""

from __future__ import annotations

import asyncio
import json
import math
import threading
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.requests import Request
from starlette.types import Message

from services.api.batch_request import MAX_BODY as BATCH_BODY
from services.http import json_body
from services.http.body import read_json_object
from services.http.json_body import MAX_CONTAINERS, ON_LOOP_MAX, TooManyContainers, decode_large
from services.http.problems import ProblemError

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


def test_slots_are_taken_and_given_back() -> None:
    slots = json_body.LargeBodySlots(2)
    slots.take()
    slots.take()
    with pytest.raises(json_body.NoSlotFree):
        slots.take()
    slots.give_back()
    slots.take()
    assert slots.taken == 2


def held_request(
    body: bytes, release: asyncio.Event, *, length: bool = True, asked: asyncio.Event | None = None
) -> Request:
    """A request whose body arrives only once `release` is set: a large read held open;
    `asked` is set when the body is first asked for."""

    async def receive() -> Message:
        if asked is not None:
            asked.set()
        await release.wait()
        return {"type": "http.request", "body": body, "more_body": False}

    headers = [(b"content-type", b"application/json")]
    if length:
        headers.append((b"content-length", str(len(body)).encode()))
    return Request({"type": "http", "method": "POST", "headers": headers}, receive)


async def test_past_two_large_bodies_at_once_a_third_is_a_503_at_once() -> None:
    """Each large decode takes its share of the GIL and up to 16 MiB twice over: the third is
    turned away before its body is read, while small bodies are read as ever."""
    large = json.dumps({"subjects": ["crm:1"] * 20_000}).encode()
    assert len(large) > ON_LOOP_MAX
    release = asyncio.Event()
    asked = [asyncio.Event() for _ in range(json_body.LARGE_AT_ONCE)]
    held = [
        asyncio.create_task(read_json_object(held_request(large, release, asked=a), BATCH_BODY))
        for a in asked
    ]
    for started in asked:  # each held read has its slot and waits for its body
        await started.wait()
    never = asyncio.Event()  # the refused request's body is never even asked for
    for length in (True, False):
        with pytest.raises(ProblemError) as caught:  # at once: never waiting for a slot
            refused = read_json_object(held_request(large, never, length=length), BATCH_BODY)
            await asyncio.wait_for(refused, 10)
        assert caught.value.status == 503 and caught.value.headers["Retry-After"] == "1"
    given = asyncio.Event()
    given.set()
    small = held_request(b'{"subjects": ["crm:2"]}', given)  # its length says it is small
    assert await read_json_object(small, BATCH_BODY) == {"subjects": ["crm:2"]}
    release.set()
    assert [len((await task)["subjects"]) for task in held] == [20_000, 20_000]
    assert json_body.LARGE_BODIES.taken == 0
    assert await read_json_object(request(large), BATCH_BODY)
