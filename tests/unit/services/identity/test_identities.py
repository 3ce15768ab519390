"""Identifier normalisation, blind index and encryption: the rules the blind index relies on."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.identity.identities import (
    IdentifierError,
    blind_index,
    decrypt_identifier,
    derived_subject_id,
    encrypt_identifier,
    normalise,
    normalise_email,
    normalise_phone,
)
from services.identity.secrets import KEY_BYTES

KEY = bytes(range(KEY_BYTES))

EMAILS = [
    ("ada@example.com", "ada@example.com"),
    ("  Ada@Example.COM\n", "ada@example.com"),
    ("ADA.LOVELACE+news@EXAMPLE.org", "ada.lovelace+news@example.org"),
    ("jürgen@münchen.de", "jürgen@xn--mnchen-3ya.de"),
    ("x@faß.de", "x@xn--fa-hia.de"),
    ("x@xn--fa-hia.de", "x@xn--fa-hia.de"),
    ("x@MÜNCHEN.DE", "x@xn--mnchen-3ya.de"),
    ("o'brien@sub.example.co.uk", "o'brien@sub.example.co.uk"),
]
BAD_EMAILS = [
    "",
    "ada",
    "ada@",
    "@example.com",
    "ada@@example.com",
    "ada@example",
    "ada lovelace@example.com",
    "ada@exa mple.com",
    ".ada@example.com",
    "ada.@example.com",
    "ada@-example.com",
    "a" * 65 + "@example.com",
    "ada@" + "b" * 250 + ".com",
    "a\u0000b@example.com",
    "a\u200bb@example.com",
    "ada@exam\u00adple.com",
]
PHONES = [
    ("+49 30 1234567", "+49301234567"),
    ("0049 (30) 123-4567", "+49301234567"),
    ("+1.212.555.0100", "+12125550100"),
    ("+44 20 7946 0958", "+442079460958"),
    ("+49 (0)151 12345678", "+4915112345678"),
    ("+4915112345678", "+4915112345678"),
]
BAD_PHONES = ["030 1234567", "+0 30 1234567", "+49", "+49 30 abc", "+1234567890123456", ""]


@pytest.mark.parametrize(("raw", "expected"), EMAILS)
def test_emails_normalise(raw: str, expected: str) -> None:
    assert normalise_email(raw) == expected


@pytest.mark.parametrize("raw", BAD_EMAILS)
def test_bad_emails_are_refused_without_echoing_them(raw: str) -> None:
    with pytest.raises(IdentifierError) as caught:
        normalise_email(raw)
    if raw.strip():
        assert raw.strip() not in str(caught.value)


@pytest.mark.parametrize(("raw", "expected"), PHONES)
def test_phones_normalise_to_e164(raw: str, expected: str) -> None:
    assert normalise_phone(raw) == expected


@pytest.mark.parametrize("raw", BAD_PHONES)
def test_bad_phones_are_refused(raw: str) -> None:
    with pytest.raises(IdentifierError):
        normalise_phone(raw)


def test_unknown_type_is_refused() -> None:
    with pytest.raises(IdentifierError):
        normalise("fax", "+49301234567")


local_parts = st.from_regex(r"[a-z0-9][a-z0-9._+-]{0,20}[a-z0-9]", fullmatch=True).filter(
    lambda s: ".." not in s
)
domains = st.from_regex(r"[a-z0-9]{1,10}(\.[a-z0-9]{1,10}){0,2}\.[a-z]{2,6}", fullmatch=True)


@given(local_parts, domains, st.sampled_from(["", " ", "\t"]), st.booleans())
def test_normalising_is_idempotent_and_case_blind(
    local: str, domain: str, pad: str, upper: bool
) -> None:
    address = f"{local}@{domain}"
    shown = address.upper() if upper else address
    once = normalise_email(pad + shown + pad)
    assert once == address
    assert normalise_email(once) == once
    assert blind_index(KEY, "email", once) == blind_index(KEY, "email", address)


@given(st.text(max_size=80))
def test_any_text_normalises_or_is_refused_cleanly(text: str) -> None:
    for kind in ("email", "phone"):
        try:
            value = normalise(kind, text)
        except IdentifierError:
            continue
        assert value == normalise(kind, value)


def test_blind_index_depends_on_key_type_and_value() -> None:
    index = blind_index(KEY, "email", "ada@example.com")
    assert len(index) == 32
    assert index != blind_index(bytes(KEY_BYTES), "email", "ada@example.com")
    assert index != blind_index(KEY, "phone", "ada@example.com")
    assert index != blind_index(KEY, "email", "ada@example.org")
    assert b"ada" not in index


def test_derived_subject_ids_are_stable_valid_and_opaque() -> None:
    first = derived_subject_id(KEY, "email", "ada@example.com")
    assert first == derived_subject_id(KEY, "email", "ada@example.com")
    assert first != derived_subject_id(KEY, "email", "bob@example.com")
    assert first.startswith("s-") and "ada" not in first
    from schemas.events import subject_id_problem

    assert subject_id_problem(first) is None


@given(st.binary(min_size=32, max_size=32), st.text(min_size=8, max_size=60))
def test_encryption_round_trips_and_hides_the_value(data_key: bytes, value: str) -> None:
    sealed = encrypt_identifier(data_key, "cust-1", "email", value)
    assert value.encode() not in sealed
    assert decrypt_identifier(data_key, "cust-1", "email", sealed) == value


def test_ciphertext_is_bound_to_key_subject_and_type() -> None:
    data_key = os.urandom(32)
    sealed = encrypt_identifier(data_key, "cust-1", "email", "ada@example.com")
    assert sealed != encrypt_identifier(data_key, "cust-1", "email", "ada@example.com")
    for args in (
        (os.urandom(32), "cust-1", "email"),
        (data_key, "cust-2", "email"),
        (data_key, "cust-1", "phone"),
    ):
        with pytest.raises(IdentifierError):
            decrypt_identifier(*args, sealed)
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(IdentifierError):
        decrypt_identifier(data_key, "cust-1", "email", tampered)
