"""The record MAC (schemas/record_mac.py): its exact format, that any change to a covered byte
fails it, key rotation, and the refusals of everything that is not one valid MAC header."""

from __future__ import annotations

import base64
import hmac
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.record_mac import (
    DEAD_LETTERS,
    EVENTS,
    MAC_HEADER,
    ROLES,
    STATE,
    Header,
    RecordMacs,
    Verdict,
    decode_headers,
    encode_headers,
    mac_input,
    mac_text,
)

W1 = bytes(range(32))
W2 = bytes(range(32, 64))
ONE = RecordMacs({"w1": W1}, "w1")
KEY = b"cust-1"
VALUE = b"\xc3\x01value"
HEADERS: list[Header] = [("event_type", b"ConsentGranted"), ("event_id", b"0-1")]


def sealed(macs: RecordMacs = ONE, role: str = EVENTS) -> list[Header]:
    return macs.seal(role, KEY, VALUE, HEADERS)


def test_the_header_is_exact() -> None:
    """Pins the format: a change to what is covered or how is a new version, never silent."""
    expected = hmac.new(
        W1,
        b"consent-ledger record MAC v1\x00"
        + b"\x00\x00\x00\x06events"
        + b"\x00\x00\x00\x06cust-1"
        + b"\x00\x00\x00\x07\xc3\x01value"
        + b"\x00\x00\x00\x02"
        + b"\x00\x00\x00\x0aevent_type\x00\x00\x00\x0eConsentGranted"
        + b"\x00\x00\x00\x08event_id\x00\x00\x00\x030-1",
        "sha256",
    ).digest()
    name, value = ONE.header(EVENTS, KEY, VALUE, HEADERS)
    assert name == MAC_HEADER == "ledger_mac"
    assert value == b"v1:w1:" + base64.urlsafe_b64encode(expected).rstrip(b"=")
    assert len(value) == len("v1:w1:") + 43
    assert sealed() == [*HEADERS, (name, value)]
    assert ONE.verify(EVENTS, KEY, VALUE, sealed()) is Verdict.VALID
    assert mac_text(sealed()) == value.decode("ascii")


def test_null_and_empty_differ_in_the_input() -> None:
    assert mac_input(EVENTS, None, b"", []) != mac_input(EVENTS, b"", None, [])
    assert mac_input(EVENTS, None, None, [("a", None)]) != mac_input(
        EVENTS, None, None, [("a", b"")]
    )


def changed(kind: str, data: st.DataObject, headers: list[Header]) -> dict[str, Any]:
    """One change to a covered part of the record (role, key, value, a header, their order)."""
    record: dict[str, Any] = {"role": EVENTS, "key": KEY, "value": VALUE, "headers": headers}
    if kind == "role":
        record["role"] = data.draw(st.sampled_from([r for r in ROLES if r != EVENTS]))
    elif kind in ("key", "value"):
        was = record[kind]
        record[kind] = data.draw(st.none() | st.binary(max_size=40).filter(lambda b: b != was))
    elif kind == "header value":
        i = data.draw(st.integers(0, len(headers) - 1))
        name, was = headers[i]
        new = data.draw(st.none() | st.binary(max_size=20).filter(lambda b: b != was))
        record["headers"] = [*headers[:i], (name, new), *headers[i + 1 :]]
    elif kind == "header name":
        i = data.draw(st.integers(0, len(headers) - 1))
        name, raw = headers[i]
        new_name = data.draw(st.text(max_size=12).filter(lambda n: n not in (name, MAC_HEADER)))
        record["headers"] = [*headers[:i], (new_name, raw), *headers[i + 1 :]]
    elif kind == "header added":
        extra = (data.draw(st.text(max_size=12).filter(lambda n: n != MAC_HEADER)), b"x")
        i = data.draw(st.integers(0, len(headers)))
        record["headers"] = [*headers[:i], extra, *headers[i:]]
    elif kind == "header dropped":
        i = data.draw(st.integers(0, len(headers) - 1))
        record["headers"] = [*headers[:i], *headers[i + 1 :]]
    else:  # "headers reordered"
        record["headers"] = [headers[1], headers[0], *headers[2:]]
    return record


@given(
    kind=st.sampled_from(
        [
            "role",
            "key",
            "value",
            "header value",
            "header name",
            "header added",
            "header dropped",
            "headers reordered",
        ]
    ),
    data=st.data(),
)
def test_any_change_to_a_covered_byte_fails(kind: str, data: st.DataObject) -> None:
    original = sealed()
    mac = original[-1]
    record = changed(kind, data, list(HEADERS))
    record["headers"] = [*record["headers"], mac]
    assert ONE.verify(**record) is Verdict.WRONG


@given(
    role=st.sampled_from(ROLES),
    key=st.none() | st.binary(max_size=64),
    value=st.none() | st.binary(max_size=512),
    headers=st.lists(
        st.tuples(st.text(max_size=16).filter(lambda n: n != MAC_HEADER), st.none() | st.binary()),
        max_size=5,
    ),
    flip=st.integers(0, 2**16),
)
def test_a_sealed_record_verifies_and_a_flipped_value_bit_does_not(
    role: str, key: bytes | None, value: bytes | None, headers: list[Header], flip: int
) -> None:
    record = ONE.seal(role, key, value, headers)
    assert ONE.verify(role, key, value, record) is Verdict.VALID
    if value:
        bit = flip % (len(value) * 8)
        broken = bytearray(value)
        broken[bit // 8] ^= 1 << (bit % 8)
        assert ONE.verify(role, key, bytes(broken), record) is Verdict.WRONG


def test_the_role_binds_the_record_to_its_topic() -> None:
    """A dead letter carries the refused record's key and value under the ledger's MAC: copied
    to the event topic, headers and all, it is still refused."""
    letter = ONE.seal(DEAD_LETTERS, KEY, VALUE, HEADERS)
    assert ONE.verify(DEAD_LETTERS, KEY, VALUE, letter) is Verdict.VALID
    assert ONE.verify(EVENTS, KEY, VALUE, letter) is Verdict.WRONG
    assert ONE.verify(STATE, KEY, VALUE, letter) is Verdict.WRONG


@pytest.mark.parametrize(
    ("writer", "verifier", "verdict"),
    [
        # a record MACed under w1 verifies while w1 is anywhere in the ring
        ({"w1": W1}, RecordMacs({"w2": W2, "w1": W1}, "w2"), Verdict.VALID),
        ({"w1": W1}, RecordMacs({"w1": W1, "w2": W2}, "w1"), Verdict.VALID),
        ({"w2": W2}, RecordMacs({"w2": W2, "w1": W1}, "w2"), Verdict.VALID),
        # w1 dropped from the ring: its records no longer verify
        ({"w1": W1}, RecordMacs({"w2": W2}, "w2"), Verdict.UNKNOWN_KEY),
        # the same id with another key is a wrong MAC
        ({"w1": W1}, RecordMacs({"w1": W2}, "w1"), Verdict.WRONG),
    ],
)
def test_rotation(writer: dict[str, bytes], verifier: RecordMacs, verdict: Verdict) -> None:
    (kid,) = writer
    macs = RecordMacs(writer, kid)
    assert verifier.verify(EVENTS, KEY, VALUE, sealed(macs)) is verdict


def test_the_current_key_writes() -> None:
    ring = RecordMacs({"w2": W2, "w1": W1}, "w2")
    assert (sealed(ring)[-1][1] or b"").startswith(b"v1:w2:")
    assert RecordMacs({"w2": W2}, "w2").verify(EVENTS, KEY, VALUE, sealed(ring)) is Verdict.VALID


def _with_mac(raw: bytes | None) -> list[Header]:
    return [*HEADERS, (MAC_HEADER, raw)]


GOOD = sealed()[-1][1]
assert GOOD is not None
GOOD_TEXT = GOOD.split(b":")[2]
ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
#: the same 32 bytes, the last character with one of its two spare (always zero) bits set
NON_CANONICAL = GOOD[:-1] + ALPHABET[ALPHABET.index(GOOD[-1]) | 1 :][:1]


@pytest.mark.parametrize(
    ("headers", "verdict"),
    [
        (HEADERS, Verdict.MISSING),
        ([], Verdict.MISSING),
        (_with_mac(None), Verdict.MALFORMED),
        (_with_mac(b""), Verdict.MALFORMED),
        ([*sealed(), sealed()[-1]], Verdict.MALFORMED),
        (_with_mac(b"v2:w1:" + GOOD_TEXT), Verdict.MALFORMED),
        (_with_mac(b"v1:W1:" + GOOD_TEXT), Verdict.MALFORMED),
        (_with_mac(b"v1:w1:" + GOOD_TEXT[:-1]), Verdict.MALFORMED),
        (_with_mac(b"v1:w1:" + GOOD_TEXT + b"A"), Verdict.MALFORMED),
        (_with_mac(b"v1:w1:" + GOOD_TEXT + b"="), Verdict.MALFORMED),
        (_with_mac(b"v1:w1:" + GOOD_TEXT.replace(GOOD_TEXT[:1], b"+", 1)), Verdict.MALFORMED),
        (_with_mac(b"v1:" + b"a" * 17 + b":" + GOOD_TEXT), Verdict.MALFORMED),
        (_with_mac(b" " + GOOD), Verdict.MALFORMED),
        (_with_mac(GOOD + b"\n"), Verdict.MALFORMED),
        (_with_mac(b"v1:w9:" + GOOD_TEXT), Verdict.UNKNOWN_KEY),
        (_with_mac(b"v1:w1:" + b"A" * 43), Verdict.WRONG),
        (sealed(), Verdict.VALID),
        # the MAC header may sit anywhere among the others
        ([sealed()[-1], *HEADERS], Verdict.VALID),
    ],
)
def test_what_is_refused(headers: list[Header], verdict: Verdict) -> None:
    assert ONE.verify(EVENTS, KEY, VALUE, headers) is verdict


def test_a_non_canonical_encoding_of_the_right_mac_is_refused() -> None:
    assert base64.urlsafe_b64decode(
        NON_CANONICAL.split(b":")[2] + b"="
    ) == base64.urlsafe_b64decode(GOOD_TEXT + b"=")
    assert ONE.verify(EVENTS, KEY, VALUE, _with_mac(NON_CANONICAL)) is Verdict.MALFORMED


def test_no_headers_at_all_is_missing() -> None:
    assert ONE.verify(EVENTS, KEY, VALUE, None) is Verdict.MISSING


def test_the_comparison_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", counting)
    assert ONE.verify(EVENTS, KEY, VALUE, sealed()) is Verdict.VALID
    assert ONE.verify(EVENTS, KEY, b"other", sealed()) is Verdict.WRONG
    assert len(compared) == 2


@pytest.mark.parametrize("role", ["event", "", "EVENTS"])
def test_an_unknown_role_is_a_programming_error(role: str) -> None:
    with pytest.raises(ValueError, match="record role"):
        ONE.header(role, KEY, VALUE, HEADERS)
    with pytest.raises(ValueError, match="record role"):
        ONE.verify(role, KEY, VALUE, HEADERS)


def test_the_current_key_must_be_in_the_ring() -> None:
    with pytest.raises(ValueError, match="w2"):
        RecordMacs({"w1": W1}, "w2")


def test_repr_shows_no_key() -> None:
    assert W1.hex() not in repr(ONE) and "w1" in repr(ONE)


def test_sealing_again_replaces_the_mac() -> None:
    twice = ONE.seal(EVENTS, KEY, VALUE, sealed(RecordMacs({"w2": W2}, "w2")))
    assert [name for name, _ in twice].count(MAC_HEADER) == 1
    assert ONE.verify(EVENTS, KEY, VALUE, twice) is Verdict.VALID


@given(st.lists(st.tuples(st.text(max_size=20), st.none() | st.binary(max_size=64)), max_size=8))
def test_stored_headers_read_back(headers: list[Header]) -> None:
    assert decode_headers(encode_headers(headers)) == tuple(headers)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00\x00\x00",
        b"\x00\x00\x00\x01",
        b"\x00\x00\x00\x01\xff\xff\xff\xff\x00\x00\x00\x00",
        b"\x00\x00\x00\x01\x00\x00\x00\x05ab",
        b"\x00\x00\x00\x00extra",
    ],
)
def test_stored_headers_that_are_not_refuse(data: bytes) -> None:
    with pytest.raises(ValueError, match="stored header"):
        decode_headers(data)
