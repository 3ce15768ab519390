"""Link tokens: round trip, any change refused, key rotation, expiry, nothing readable inside."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.links import GENERIC, LinkError, issue, open_token
from services.secrets import KeyRing

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
TTL = timedelta(days=730)
K1 = KeyRing({"l1": bytes(range(32))}, "l1")
K2 = KeyRing({"l2": bytes(range(1, 33))}, "l2")
ROTATED = KeyRing({"l2": K2.keys["l2"], "l1": K1.keys["l1"]}, "l2")

subject_ids = st.from_regex(r"[A-Za-z0-9._:-]{1,128}", fullmatch=True)
optional_text = st.none() | st.text(st.characters(codec="utf-8"), min_size=1, max_size=60)


def token(**overrides: object) -> str:
    fields: dict[str, object] = {
        "subject_id": "sub-123",
        "purpose": "newsletter",
        "channel": "email",
        "campaign_id": "spring-2026",
        "now": NOW,
        "ttl": TTL,
    }
    fields.update(overrides)
    return issue(K1, **fields)  # type: ignore[arg-type]


def raw(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@given(
    subject_id=subject_ids,
    purpose=optional_text,
    channel=optional_text,
    campaign=optional_text,
    seconds=st.integers(0, 10**8),
)
def test_round_trip(
    subject_id: str, purpose: str | None, channel: str | None, campaign: str | None, seconds: int
) -> None:
    now = NOW + timedelta(seconds=seconds)
    text = issue(
        K1,
        subject_id=subject_id,
        purpose=purpose,
        channel=channel,
        campaign_id=campaign,
        now=now,
        ttl=TTL,
    )
    claims = open_token(K1, text, now)
    assert (claims.subject_id, claims.purpose, claims.channel, claims.campaign_id) == (
        subject_id,
        purpose,
        channel,
        campaign,
    )
    assert claims.issued_at == now.replace(microsecond=0)
    assert claims.expires_at == (now + TTL).replace(microsecond=0)
    assert claims.kid == "l1"


@given(st.data())
def test_any_bit_flip_is_refused(data: st.DataObject) -> None:
    sealed = bytearray(raw(token()))
    bit = data.draw(st.integers(0, len(sealed) * 8 - 1))
    sealed[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(LinkError) as caught:
        open_token(K1, b64(bytes(sealed)), NOW)
    assert str(caught.value) == GENERIC


@given(st.data())
def test_any_changed_character_is_refused(data: st.DataObject) -> None:
    text = token()
    at = data.draw(st.integers(0, len(text) - 1))
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    other = data.draw(st.sampled_from(alphabet.replace(text[at], "")))
    with pytest.raises(LinkError):
        open_token(K1, text[:at] + other + text[at + 1 :], NOW)


@given(cut=st.integers(1, 200))
def test_truncated_or_extended_tokens_are_refused(cut: int) -> None:
    text = token()
    for changed in (text[:-cut], text + "A" * cut, raw_plus(text, cut)):
        with pytest.raises(LinkError):
            open_token(K1, changed, NOW)


def raw_plus(text: str, extra: int) -> str:
    return b64(raw(text) + bytes(extra))


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "malformed"),
        ("not a token", "malformed"),
        ("AQ==", "malformed"),
        ("x" * 2000, "malformed"),
        ("AQJsMQ", "malformed"),
        (b64(bytes((1, 2)) + b"zz" + bytes(40)), "unknown_key"),
        (b64(bytes((2, 2)) + b"l1" + bytes(40)), "malformed"),
        (b64(bytes((1, 2)) + b"l1" + bytes(40)), "tampered"),
    ],
    ids=["empty", "spaces", "padding", "too-long", "short", "unknown-kid", "version", "forged"],
)
def test_refusals_say_nothing_but_log_why(text: str, why: str) -> None:
    with pytest.raises(LinkError) as caught:
        open_token(K1, text, NOW)
    assert (str(caught.value), caught.value.why) == (GENERIC, why)


def test_a_key_not_in_the_ring_is_refused() -> None:
    with pytest.raises(LinkError) as caught:
        open_token(K2, token(), NOW)
    assert caught.value.why == "unknown_key"


def test_same_kid_other_key_is_tampered() -> None:
    impostor = KeyRing({"l1": bytes(32)}, "l1")
    with pytest.raises(LinkError) as caught:
        open_token(impostor, token(), NOW)
    assert caught.value.why == "tampered"


def test_rotation_opens_old_links_and_seals_with_the_new_key() -> None:
    old = token()
    assert open_token(ROTATED, old, NOW).kid == "l1"
    new = issue(
        ROTATED,
        subject_id="s",
        purpose=None,
        channel=None,
        campaign_id=None,
        now=NOW,
        ttl=TTL,
    )
    assert open_token(ROTATED, new, NOW).kid == "l2"
    with pytest.raises(LinkError):
        open_token(K1, new, NOW)


@pytest.mark.parametrize(
    ("after", "valid"),
    [
        (timedelta(0), True),
        (TTL - timedelta(seconds=1), True),
        (TTL, False),
        (TTL + timedelta(days=1), False),
    ],
)
def test_expiry(after: timedelta, valid: bool) -> None:
    text = token()
    if valid:
        assert open_token(K1, text, NOW + after).subject_id == "sub-123"
    else:
        with pytest.raises(LinkError) as caught:
            open_token(K1, text, NOW + after)
        assert caught.value.why == "expired"


@given(subject_id=subject_ids.filter(lambda s: len(s) >= 4))
def test_nothing_readable_inside(subject_id: str) -> None:
    text = token(subject_id=subject_id, campaign_id=None)
    assert subject_id not in text
    assert subject_id.encode() not in raw(text)
    assert b"newsletter" not in raw(text)


def test_two_links_for_the_same_choice_differ() -> None:
    assert token() != token()


def test_the_nonce_is_the_only_randomness() -> None:
    nonce = bytes(12)
    assert token(nonce=nonce) == token(nonce=nonce)


@pytest.mark.parametrize(
    "overrides",
    [
        {"subject_id": ""},
        {"campaign_id": ""},
        {"campaign_id": "x" * 256},
        {"ttl": timedelta(0)},
        {"now": datetime(2026, 3, 1)},
        {"nonce": b"short"},
    ],
    ids=["empty-subject", "empty-campaign", "long-campaign", "no-ttl", "naive-time", "nonce"],
)
def test_issue_refuses_what_it_cannot_seal(overrides: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        token(**overrides)
