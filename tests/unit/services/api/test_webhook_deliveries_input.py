"""GET /v1/webhooks/{id}/deliveries: the cursor it gives decodes to the position it encoded, a
cursor it cannot have given is refused, and every bad query value is a 422 naming its field
(against the app in-process, before any database is read)."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.api.webhook_deliveries import MAX_CURSOR, decode_cursor, encode_cursor
from tests.unit.services.api.in_process import InProcess, problem_of

MOMENT = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)
DELIVERY = uuid.UUID("7b0f3a52-95a4-4c3e-9d0e-3f2c8a1b6d10")


def b64(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return base64.urlsafe_b64encode(raw).decode()


offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


@given(
    moment=st.datetimes(
        min_value=datetime(1970, 1, 1), max_value=datetime(9998, 12, 31), timezones=offsets
    ),
    delivery=st.uuids(),
)
def test_a_cursor_decodes_to_the_position_it_encodes(moment: datetime, delivery: uuid.UUID) -> None:
    cursor = encode_cursor(moment, delivery)
    assert len(cursor) <= MAX_CURSOR
    assert decode_cursor(cursor) == (moment, delivery)
    # what the list puts in its `next` link needs no escaping beyond base64url's alphabet
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=")


def test_the_example_cursor() -> None:
    cursor = encode_cursor(MOMENT, DELIVERY)
    assert base64.urlsafe_b64decode(cursor).decode() == (
        "2026-03-01T12:30:15.123456+00:00|7b0f3a52-95a4-4c3e-9d0e-3f2c8a1b6d10"
    )


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "not base64!",
        "ä" * 8,
        b64("2026-03-01T12:30:15+00:00"),  # no '|'
        b64(f"2026-03-01T12:30:15+00:00{DELIVERY}"),
        b64(f"|{DELIVERY}"),
        b64(f"yesterday|{DELIVERY}"),
        b64("2026-03-01T12:30:15+00:00|not-a-uuid"),
        b64("2026-03-01T12:30:15+00:00|"),
        b64(f"2026-03-01T12:30:15|{DELIVERY}"),  # a time without its offset
        b64(b"\xff\xfe|" + str(DELIVERY).encode()),  # not UTF-8
        encode_cursor(MOMENT, DELIVERY)[:-4],  # cut short
        b64(f"2026-03-01T12:30:15+00:00|{DELIVERY}" + " " * MAX_CURSOR),  # too long
    ],
    ids=[
        "empty",
        "not-base64",
        "not-ascii",
        "no-bar",
        "no-bar-joined",
        "no-time",
        "not-a-time",
        "not-a-uuid",
        "no-uuid",
        "naive-time",
        "not-utf8",
        "cut-short",
        "too-long",
    ],
)
def test_a_cursor_the_list_cannot_have_given_is_refused(cursor: str) -> None:
    assert decode_cursor(cursor) is None


@given(st.text(max_size=300))
def test_any_text_decodes_or_is_refused_without_raising(cursor: str) -> None:
    found = decode_cursor(cursor)
    assert found is None or encode_cursor(*found) is not None


WEBHOOK = "/v1/webhooks/0b8a5c1e-2f6d-4f7a-9a51-6c2d7e3f4a10/deliveries"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=failed", "status"),
        ("status=", "status"),
        ("status=" + "p" * 5000, "status"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=ten", "limit"),
        ("limit=-1", "limit"),
        ("limit=%C2%B2", "limit"),  # '²': str.isdigit, but not int()
        ("limit=" + "9" * 5000, "limit"),
        ("cursor=zz", "cursor"),
        ("cursor=", "cursor"),
        ("cursor=" + b64(f"yesterday|{DELIVERY}"), "cursor"),
        ("cursor=" + "A" * 5000, "cursor"),
        ("page=2", "page"),
    ],
)
async def test_bad_queries_name_the_field(served: InProcess, query: str, field: str) -> None:
    response = await served.api.get(f"{WEBHOOK}?{query}")
    problem = problem_of(response, 422, "invalid-request")
    assert [e["field"] for e in problem["errors"]] == [field]
    if field == "status":
        assert problem["errors"][0]["accepted"] == ["pending", "succeeded", "parked"]


async def test_every_bad_field_is_named_at_once(served: InProcess) -> None:
    response = await served.api.get(f"{WEBHOOK}?status=done&limit=0&cursor=zz")
    problem = problem_of(response, 422, "invalid-request")
    assert [e["field"] for e in problem["errors"]] == ["status", "limit", "cursor"]
