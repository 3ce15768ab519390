"""Link tokens of version 3: the link id and address sealed, each kind's lifetime (old
preference links included), and the AEAD that seals them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, AESGCMSIV
from hypothesis import given
from hypothesis import strategies as st

from services.identity.links import (
    PREFERENCES,
    UNSUBSCRIBE,
    LinkError,
    LinkKind,
    fingerprint,
    open_token,
)
from tests.link_tokens import K1, NOW, TTL, b64, kinds, raw, token, version2_token

# --- link ids, addresses and lifetimes (security review finding M3) -----------------------------


@given(kind=kinds, link_id=st.binary(min_size=16, max_size=16), index=st.binary(min_size=32))
def test_the_link_id_and_address_are_sealed_not_shown(
    kind: LinkKind, link_id: bytes, index: bytes
) -> None:
    """A link carries its id and the blind-index prefix of the address it went to, and shows
    neither: the prefix only the ledger can read, the id only the events say."""
    text = token(kind=kind, link_id=link_id, address=index)
    claims = open_token(K1, text, NOW, kind=kind)
    assert (claims.link_id, claims.address) == (link_id.hex(), index[:8])
    assert link_id not in raw(text) and index[:8] not in raw(text)


PREFERENCE_TTL = timedelta(days=90)


@pytest.mark.parametrize(
    ("kind", "age", "opens"),
    [
        (PREFERENCES, timedelta(0), True),
        (PREFERENCES, PREFERENCE_TTL - timedelta(seconds=1), True),
        (PREFERENCES, PREFERENCE_TTL, False),
        (PREFERENCES, timedelta(days=729), False),
        # an unsubscribe link keeps its sealed lifetime: no max_age is passed for it
        (UNSUBSCRIBE, timedelta(days=729), True),
        (UNSUBSCRIBE, TTL, False),
    ],
    ids=["new", "last-second", "preference-lifetime", "sealed-lifetime-left", "unsubscribe",
         "unsubscribe-expired"],
)  # fmt: skip
def test_a_version_2_link_sealed_for_two_years_opens_only_within_the_preference_lifetime(
    kind: LinkKind, age: timedelta, opens: bool
) -> None:
    old = version2_token(K1, kind, subject_id="sub-2", issued=NOW, ttl=TTL)
    max_age = PREFERENCE_TTL if kind == PREFERENCES else None
    if not opens:
        with pytest.raises(LinkError) as caught:
            open_token(K1, old, NOW + age, kind=kind, max_age=max_age)
        assert caught.value.why == "expired"
        return
    claims = open_token(K1, old, NOW + age, kind=kind, max_age=max_age)
    # a version 2 link is named by its fingerprint, as its events were before link ids
    assert (claims.version, claims.link_id, claims.address) == (2, fingerprint(old), None)
    assert claims.issued_at == NOW


@given(
    ttl_days=st.integers(1, 3650),
    max_days=st.none() | st.integers(1, 365),
    age=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=4000)),
    kind=kinds,
)
def test_a_link_opens_exactly_while_younger_than_both_lifetimes(
    ttl_days: int, max_days: int | None, age: timedelta, kind: LinkKind
) -> None:
    ttl = timedelta(days=ttl_days)
    max_age = timedelta(days=max_days) if max_days is not None else None
    text = token(kind=kind, ttl=ttl)
    limit = min(ttl, max_age) if max_age is not None else ttl
    if age < limit:
        assert open_token(K1, text, NOW + age, kind=kind, max_age=max_age).kind == kind
    else:
        with pytest.raises(LinkError) as caught:
            open_token(K1, text, NOW + age, kind=kind, max_age=max_age)
        assert caught.value.why == "expired"


# --- the AEAD of new links (security review finding L11) ------------------------------------


@pytest.mark.parametrize("kind", [UNSUBSCRIBE, PREFERENCES])
def test_new_links_are_sealed_with_aes_gcm_siv(kind: LinkKind) -> None:
    """Random 96-bit nonces under one long-lived key: AES-GCM-SIV gives nothing away when one
    repeats (RFC 8452), where a repeated AES-GCM nonce leaks the authentication key."""
    data = raw(token(kind=kind))
    kid_len = data[1]
    header, nonce, sealed = (
        data[: 2 + kid_len],
        data[2 + kid_len : 14 + kid_len],
        data[14 + kid_len :],
    )
    associated = b"consent-ledger/link/" + kind.encode() + header
    assert AESGCMSIV(K1.current).decrypt(nonce, sealed, associated)
    with pytest.raises(InvalidTag):
        AESGCM(K1.current).decrypt(nonce, sealed, associated)


def test_a_version_2_token_relabelled_as_version_3_does_not_open() -> None:
    old = raw(version2_token(K1, PREFERENCES, subject_id="sub-2", issued=NOW, ttl=TTL))
    with pytest.raises(LinkError) as caught:
        open_token(K1, b64(bytes((3,)) + old[1:]), NOW, kind=PREFERENCES)
    assert caught.value.why == "tampered"


def test_one_nonce_reused_for_two_links_still_opens_each_and_seals_them_apart() -> None:
    nonce = bytes(12)
    first, second = token(nonce=nonce), token(nonce=nonce)
    assert raw(first)[14:] != raw(second)[14:]  # a fresh link id: different ciphertexts
    assert (
        open_token(K1, first, NOW, kind=UNSUBSCRIBE).link_id
        != open_token(K1, second, NOW, kind=UNSUBSCRIBE).link_id
    )
