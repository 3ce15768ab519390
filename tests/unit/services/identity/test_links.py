"""Link tokens: round trip, any change refused, key rotation, expiry, nothing readable inside,
and the kinds: a token of one kind (unsubscribe, preferences, confirm) never opens another's
page."""

from __future__ import annotations

import os
import struct
from datetime import datetime, timedelta

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given
from hypothesis import strategies as st

from services.identity.links import (
    GENERIC,
    PREFERENCES,
    UNSUBSCRIBE,
    LinkError,
    LinkKind,
    field_problem,
    issue,
    open_token,
)
from services.identity.secrets import KeyRing
from services.rules.languages import LANGUAGES
from tests.link_tokens import (
    K1,
    K2,
    NOW,
    OTHERS,
    ROTATED,
    TTL,
    b64,
    kinds,
    optional_text,
    raw,
    subject_ids,
    token,
    version3_token,
)


def unsubscribe(keys: KeyRing, text: str, now: datetime = NOW) -> str:
    """The subject id of an unsubscribe token (the kind most of these tests use)."""
    return open_token(keys, text, now, kind=UNSUBSCRIBE).subject_id


@given(
    kind=kinds,
    subject_id=subject_ids,
    purpose=optional_text,
    channel=optional_text,
    campaign=optional_text,
    seconds=st.floats(0, 10**8, allow_nan=False),
)
def test_round_trip(
    kind: LinkKind,
    subject_id: str,
    purpose: str | None,
    channel: str | None,
    campaign: str | None,
    seconds: float,
) -> None:
    now = NOW + timedelta(seconds=seconds)
    text = issue(
        K1,
        kind=kind,
        subject_id=subject_id,
        purpose=purpose,
        channel=channel,
        campaign_id=campaign,
        now=now,
        ttl=TTL,
    )
    claims = open_token(K1, text, now, kind=kind)
    assert (claims.kind, claims.subject_id, claims.purpose, claims.channel, claims.campaign_id) == (
        kind,
        subject_id,
        purpose,
        channel,
        campaign,
    )
    assert claims.issued_at == now  # to the microsecond: a revocation is exact
    assert claims.expires_at == (now + TTL).replace(microsecond=0)
    assert claims.kid == "l1"
    assert claims.version == 4 and claims.address is None and len(claims.link_id) == 32
    assert claims.language is None


@given(st.data())
def test_any_bit_flip_is_refused(data: st.DataObject) -> None:
    sealed = bytearray(raw(token()))
    bit = data.draw(st.integers(0, len(sealed) * 8 - 1))
    sealed[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(LinkError) as caught:
        unsubscribe(K1, b64(bytes(sealed)))
    assert str(caught.value) == GENERIC


@given(st.data())
def test_any_changed_character_is_refused(data: st.DataObject) -> None:
    text = token()
    at = data.draw(st.integers(0, len(text) - 1))
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    other = data.draw(st.sampled_from(alphabet.replace(text[at], "")))
    with pytest.raises(LinkError):
        unsubscribe(K1, text[:at] + other + text[at + 1 :])


@given(cut=st.integers(1, 200))
def test_truncated_or_extended_tokens_are_refused(cut: int) -> None:
    text = token()
    for changed in (text[:-cut], text + "A" * cut, raw_plus(text, cut)):
        with pytest.raises(LinkError):
            unsubscribe(K1, changed)


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
        (b64(bytes((5, 2)) + b"l1" + bytes(40)), "malformed"),
        (b64(bytes((4, 2)) + b"l1" + bytes(40)), "tampered"),
        (b64(bytes((3, 2)) + b"l1" + bytes(40)), "tampered"),
        (b64(bytes((2, 2)) + b"l1" + bytes(40)), "tampered"),
        (b64(bytes((1, 2)) + b"l1" + bytes(40)), "tampered"),
    ],
    ids=["empty", "spaces", "padding", "too-long", "short", "unknown-kid", "version", "forged",
         "forged-v3", "forged-v2", "forged-v1"],
)  # fmt: skip
def test_refusals_say_nothing_but_log_why(text: str, why: str) -> None:
    with pytest.raises(LinkError) as caught:
        unsubscribe(K1, text)
    assert (str(caught.value), caught.value.why) == (GENERIC, why)


def test_a_key_not_in_the_ring_is_refused() -> None:
    with pytest.raises(LinkError) as caught:
        unsubscribe(K2, token())
    assert caught.value.why == "unknown_key"


def test_same_kid_other_key_is_tampered() -> None:
    impostor = KeyRing({"l1": bytes(32)}, "l1")
    with pytest.raises(LinkError) as caught:
        unsubscribe(impostor, token())
    assert caught.value.why == "tampered"


def test_rotation_opens_old_links_and_seals_with_the_new_key() -> None:
    old = token()
    assert open_token(ROTATED, old, NOW, kind=UNSUBSCRIBE).kid == "l1"
    new = issue(
        ROTATED,
        kind=PREFERENCES,
        subject_id="s",
        purpose=None,
        channel=None,
        campaign_id=None,
        now=NOW,
        ttl=TTL,
    )
    assert open_token(ROTATED, new, NOW, kind=PREFERENCES).kid == "l2"
    with pytest.raises(LinkError):
        open_token(K1, new, NOW, kind=PREFERENCES)


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
        assert unsubscribe(K1, text, NOW + after) == "sub-123"
    else:
        with pytest.raises(LinkError) as caught:
            unsubscribe(K1, text, NOW + after)
        assert caught.value.why == "expired"


@given(subject_id=subject_ids.filter(lambda s: len(s) >= 4))
def test_nothing_readable_inside(subject_id: str) -> None:
    text = token(subject_id=subject_id, campaign_id=None)
    assert subject_id not in text
    assert subject_id.encode() not in raw(text)
    assert b"newsletter" not in raw(text)


def test_two_links_for_the_same_choice_differ() -> None:
    assert token() != token()


def test_the_nonce_and_the_link_id_are_the_only_randomness() -> None:
    nonce, link_id = bytes(12), bytes(16)
    assert token(nonce=nonce, link_id=link_id) == token(nonce=nonce, link_id=link_id)
    assert token(nonce=nonce) != token(nonce=nonce)  # a new link id each time


@pytest.mark.parametrize(
    "overrides",
    [
        {"subject_id": ""},
        {"campaign_id": ""},
        {"campaign_id": "x" * 256},
        {"campaign_id": "\N{GRINNING FACE}" * 64},
        {"campaign_id": "\ud800"},
        {"ttl": timedelta(0)},
        {"now": datetime(2026, 3, 1)},
        {"nonce": b"short"},
        {"link_id": bytes(15)},
        {"address": bytes(7)},
    ],
    ids=[
        "empty-subject",
        "empty-campaign",
        "long-campaign",
        "campaign-over-255-bytes",
        "lone-surrogate",
        "no-ttl",
        "naive-time",
        "nonce",
        "short-link-id",
        "short-address",
    ],
)
def test_issue_refuses_what_it_cannot_seal(overrides: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        token(**overrides)


@given(st.text(st.characters(exclude_categories=()), max_size=300))  # lone surrogates too
def test_field_problem_says_whether_a_text_can_be_sealed(text: str) -> None:
    problem = field_problem(text)
    if problem is None:
        assert open_token(K1, token(campaign_id=text), NOW, kind=UNSUBSCRIBE).campaign_id == text
    else:
        with pytest.raises(ValueError, match="campaign_id"):
            token(campaign_id=text)


# --- the kinds ----------------------------------------------------------------------------


@given(kind=kinds, nonce=st.binary(min_size=12, max_size=12))
def test_a_token_of_one_kind_never_opens_as_the_other(kind: LinkKind, nonce: bytes) -> None:
    text = token(kind=kind, nonce=nonce)
    assert open_token(K1, text, NOW, kind=kind).kind == kind
    for other in OTHERS[kind]:
        with pytest.raises(LinkError) as caught:
            open_token(K1, text, NOW, kind=other)
        assert (str(caught.value), caught.value.why) == (GENERIC, "wrong_kind")


def test_the_kind_is_bound_as_associated_data_not_shown() -> None:
    """The same inputs and nonce give tokens of the same length and clear prefix whatever the
    kind: nothing in the clear says which page a token opens, and flipping no clear byte turns
    one kind into the other."""
    nonce = bytes(12)
    u, p = token(kind=UNSUBSCRIBE, nonce=nonce), token(kind=PREFERENCES, nonce=nonce)
    assert len(u) == len(p) and raw(u)[:16] == raw(p)[:16]
    assert raw(u)[16:] != raw(p)[16:]


def legacy_token(keys: KeyRing, subject_id: str, *, expires: datetime) -> str:
    """A version 1 token, sealed as before links had a kind (no kind byte, the old domain)."""
    kid = keys.current_id.encode()
    header = bytes((1, len(kid))) + kid
    payload = struct.pack(">II", int(NOW.timestamp()), int(expires.timestamp()))
    for text in (subject_id, "newsletter", "email", "old-campaign"):
        payload += bytes((len(text),)) + text.encode()
    nonce = os.urandom(12)
    sealed = AESGCM(keys.current).encrypt(nonce, payload, b"consent-ledger/link" + header)
    return b64(header + nonce + sealed)


def test_a_legacy_token_still_unsubscribes_but_never_opens_the_preference_page() -> None:
    old = legacy_token(K1, "sub-9", expires=NOW + TTL)
    claims = open_token(K1, old, NOW, kind=UNSUBSCRIBE)
    assert (claims.kind, claims.subject_id, claims.campaign_id) == (
        UNSUBSCRIBE,
        "sub-9",
        "old-campaign",
    )
    with pytest.raises(LinkError) as caught:
        open_token(K1, old, NOW, kind=PREFERENCES)
    assert caught.value.why == "wrong_kind"
    with pytest.raises(LinkError) as expired:
        open_token(K1, old, NOW + TTL, kind=UNSUBSCRIBE)
    assert expired.value.why == "expired"


@given(kind=kinds, language=st.sampled_from(LANGUAGES))
def test_a_link_carries_the_language_its_pages_speak(kind: LinkKind, language: str) -> None:
    text = token(kind=kind, language=language)
    claims = open_token(K1, text, NOW, kind=kind)
    assert (claims.language, claims.version, claims.campaign_id) == (language, 4, "spring-2026")


@pytest.mark.parametrize("language", ["de", "FI", "", "en-GB", "fi "])
def test_only_a_language_of_the_pages_is_sealed(language: str) -> None:
    with pytest.raises(ValueError, match="language must be one of fi, sv, en"):
        token(language=language)


@pytest.mark.parametrize("kind", [UNSUBSCRIBE, PREFERENCES])
def test_a_version_3_link_still_opens_without_a_language(kind: LinkKind) -> None:
    old = version3_token(K1, kind, subject_id="sub-3", issued=NOW)
    claims = open_token(K1, old, NOW, kind=kind)
    assert (claims.version, claims.subject_id, claims.language) == (3, "sub-3", None)
    assert (claims.campaign_id, claims.issued_at) == ("old-campaign", NOW)
    with pytest.raises(LinkError) as caught:
        open_token(K1, old, NOW, kind=OTHERS[kind][0])
    assert caught.value.why == "wrong_kind"
