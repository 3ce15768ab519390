"""API keys: their format and id, their keyed hash (and the legacy one), the Authorization
header, scopes, the admin key's entropy rule and the check of a presented key against stored
rows."""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import random
import re
import string
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.api_keys import (
    ADMIN,
    AUDIT,
    DECIDE,
    FROM_ADMIN_VARIABLE,
    FROM_COMMAND,
    FROM_DEV_KEY,
    HASHED_ID_PREFIX,
    KEYED,
    LEGACY,
    NOTICES,
    RECORD,
    REQUESTS,
    SCOPES,
    Caller,
    KeyRefused,
    KeyRow,
    admin_key_problem,
    authenticate,
    bearer_key,
    forgotten_admin_keys,
    format_key,
    key_hash,
    key_id,
    legacy_key_hash,
    longest_run,
    name_problem,
    new_key,
    parse_scopes,
    permits,
    secret_bits,
    shortest_period,
)
from services.secrets import new_key as new_secret

IDS = st.text(string.ascii_letters + string.digits, min_size=1, max_size=40)
SECRETS = st.text(string.ascii_letters + string.digits + "_-", min_size=1, max_size=80)
NOW = datetime(2026, 11, 25, tzinfo=UTC)
HASH_KEY = b"k" * 32


def row(key: str, scopes: frozenset[str], revoked: bool = False) -> KeyRow:
    return KeyRow(
        key_id(key), "crm", scopes, key_hash(key, HASH_KEY), NOW, NOW if revoked else None
    )


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("cl_3fa9c2_abcDEF-_xyz", "3fa9c2"),
        ("cl_testadmin_a_b_c", "testadmin"),
        ("cl_A1_-", "A1"),
        ("cl_x", None),
        ("cl__secret", None),
        ("cl_has-dash_secret", None),
        ("cl_id_", None),
        ("CL_id_secret", None),
        ("cl_id_sec ret", None),
        ("a-hand-chosen-admin-key-of-32-chars", None),
        ("", None),
    ],
)
def test_key_ids(key: str, expected: str | None) -> None:
    found = key_id(key)
    if expected is None:
        digest = hashlib.sha256(b"consent-ledger key id\x00" + key.encode()).hexdigest()
        assert found == HASHED_ID_PREFIX + digest[:16]
    else:
        assert found == expected


@given(IDS, SECRETS)
def test_the_id_of_a_formatted_key_is_its_id(kid: str, secret: str) -> None:
    assert key_id(format_key(kid, secret)) == kid


@given(st.text(max_size=200))
def test_every_text_has_an_id_and_a_hashed_one_is_never_a_formatted_one(text: str) -> None:
    found = key_id(text)
    if found.startswith(HASHED_ID_PREFIX):
        assert re.fullmatch(r"h-[0-9a-f]{16}", found)
        assert found not in key_hash(text, HASH_KEY).hex()  # the id is not the stored hash
    else:
        assert re.fullmatch(r"[A-Za-z0-9]{1,40}", found) and text.startswith(f"cl_{found}_")


def test_new_keys_are_formatted_random_and_long() -> None:
    made = [new_key() for _ in range(50)]
    assert len({key for _, key in made}) == 50
    for kid, key in made:
        assert key_id(key) == kid and re.fullmatch(r"[0-9a-f]{16}", kid)
        assert admin_key_problem(key) is None
        assert len(key) - len(f"cl_{kid}_") == 43  # 256 bits, base64url without padding


@given(st.text(min_size=1, max_size=100), st.binary(min_size=32, max_size=32))
def test_the_hash_is_hmac_sha256_of_the_key_under_the_hash_key(key: str, hash_key: bytes) -> None:
    assert key_hash(key, hash_key) == hmac.new(hash_key, key.encode(), hashlib.sha256).digest()
    assert len(key_hash(key, hash_key)) == 32
    assert key_hash(key, hash_key) != legacy_key_hash(key)


def test_the_hash_depends_on_the_server_key() -> None:
    """A table of hashes is useless without the hash key: the same key hashes differently."""
    _, key = new_key()
    assert key_hash(key, b"a" * 32) != key_hash(key, b"b" * 32)
    assert legacy_key_hash(key) == hashlib.sha256(key.encode()).digest()


@pytest.mark.parametrize(
    ("header", "key"),
    [
        ("Bearer cl_a_b", "cl_a_b"),
        ("bearer cl_a_b", "cl_a_b"),
        ("BEARER   cl_a_b  ", "cl_a_b"),
        ("Bearer abc+/=", "abc+/="),
    ],
)
def test_bearer_header_gives_the_key(header: str, key: str) -> None:
    assert bearer_key(header) == key


@pytest.mark.parametrize(
    ("header", "why"),
    [
        (None, "send an API key"),
        ("", "send an API key"),
        ("Basic dXNlcjpwYXNz", "must be `Bearer <key>`"),
        ("Bearer", "must be `Bearer <key>`"),
        ("Bearer ", "must be `Bearer <key>`"),
        ("Bearer a b", "not valid"),
        ("Bearer =abc", "not valid"),
        ("Bearer " + "a" * 513, "not valid"),
    ],
)
def test_bearer_header_refused(header: str | None, why: str) -> None:
    with pytest.raises(KeyRefused, match=re.escape(why)):
        bearer_key(header)


@given(st.text(max_size=100))
def test_any_header_gives_a_key_or_a_refusal(header: str) -> None:
    try:
        key = bearer_key(header)
    except KeyRefused:
        return
    assert header.strip().lower().startswith("bearer ") and key in header


def test_authenticate_finds_the_caller_of_a_stored_key() -> None:
    _, key = new_key()
    stored = row(key, frozenset({DECIDE}))
    caller = authenticate(f"Bearer {key}", {stored.key_id: stored}, HASH_KEY)
    assert caller == Caller(stored.key_id, "crm", frozenset({DECIDE}))


def test_a_hand_chosen_key_authenticates_under_its_hashed_id() -> None:
    key = new_secret()
    stored = row(key, frozenset({ADMIN}))
    assert authenticate(f"Bearer {key}", {stored.key_id: stored}, HASH_KEY).scopes == {ADMIN}


@pytest.mark.parametrize(
    ("kind", "stored", "ok"),
    [
        (KEYED, "keyed", True),
        (LEGACY, "legacy", True),  # a row from before the hash key: still works
        (KEYED, "legacy", False),  # a keyed row never accepts the bare SHA-256
        (LEGACY, "keyed", False),
        (KEYED, "keyed under another hash key", False),
    ],
)
def test_a_row_is_checked_the_way_its_hash_was_made(kind: str, stored: str, ok: bool) -> None:
    kid, key = new_key()
    digest = {
        "keyed": key_hash(key, HASH_KEY),
        "legacy": legacy_key_hash(key),
        "keyed under another hash key": key_hash(key, b"x" * 32),
    }[stored]
    rows = {kid: KeyRow(kid, "crm", frozenset({DECIDE}), digest, NOW, None, hash_kind=kind)}
    if ok:
        assert authenticate(f"Bearer {key}", rows, HASH_KEY).key_id == kid
    else:
        with pytest.raises(KeyRefused, match="not valid"):
            authenticate(f"Bearer {key}", rows, HASH_KEY)


@pytest.mark.parametrize(
    ("presented", "why", "names_the_key"),
    [
        ("unknown", "not valid", False),
        ("wrong secret", "not valid", True),
        ("revoked", "revoked", True),
    ],
)
def test_authenticate_refuses(presented: str, why: str, names_the_key: bool) -> None:
    kid, key = new_key()
    stored = row(key, frozenset({ADMIN}), revoked=presented == "revoked")
    rows = {kid: stored}
    header = {
        "unknown": f"Bearer {new_key()[1]}",
        "wrong secret": f"Bearer {format_key(kid, 'guess')}",
        "revoked": f"Bearer {key}",
    }[presented]
    with pytest.raises(KeyRefused, match=why) as refused:
        authenticate(header, rows, HASH_KEY)
    # a refusal names only a stored key's id, never one the presenter made up
    assert refused.value.key_id == (kid if names_the_key else None)


@pytest.mark.parametrize(
    ("scopes", "needed", "allowed"),
    [
        ({DECIDE}, DECIDE, True),
        ({DECIDE}, RECORD, False),
        ({DECIDE, RECORD}, RECORD, True),
        ({RECORD}, AUDIT, False),
        ({RECORD}, NOTICES, False),
        ({RECORD}, REQUESTS, False),
        ({NOTICES}, NOTICES, True),
        ({NOTICES}, RECORD, False),
        ({REQUESTS}, REQUESTS, True),
        ({REQUESTS}, AUDIT, False),
        ({AUDIT}, ADMIN, False),
        ({ADMIN}, DECIDE, True),
        ({ADMIN}, RECORD, True),
        ({ADMIN}, NOTICES, True),
        ({ADMIN}, REQUESTS, True),
        ({ADMIN}, AUDIT, True),
        ({ADMIN}, ADMIN, True),
    ],
)
def test_admin_implies_every_scope(scopes: set[str], needed: str, allowed: bool) -> None:
    assert permits(scopes, needed) is allowed


@pytest.mark.parametrize(
    ("names", "problem"),
    [
        (["decide"], None),
        (["decide", "record", "decide"], None),
        (list(SCOPES), None),
        (["notices", "requests"], None),
        ([], "at least one scope"),
        (["read"], "unknown scope 'read'"),
    ],
)
def test_parse_scopes(names: list[str], problem: str | None) -> None:
    if problem is None:
        assert parse_scopes(names) == set(names)
    else:
        with pytest.raises(ValueError, match=problem):
            parse_scopes(names)


def test_the_scopes() -> None:
    assert SCOPES == ("decide", "record", "notices", "requests", "audit", "admin")


HEX_64 = "0123456789abcdef" * 4
RANDOM_HEX = "3f9c2a7be41d0865c7f1a93e2b5d6048f0a1c3e5b7d9f2a4c6e8b0d2f4a6c8e0"
RANDOM_B64 = "qH2m0YvZ8dTn3Kc1pW7sXe4uRj6bLa9fGi5oNy0VtDk"
RANDOM_DIGITS = "739201846583920174650218374650192837465019283746501928374610293847561029384756"


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        # at least 256 bits in the secret of a cl_ key, or in a bare key
        (f"cl_ops_{RANDOM_HEX}", None),
        (f"cl_ops_{RANDOM_B64}", None),
        (f"cl_ops_{RANDOM_DIGITS}", None),
        (RANDOM_B64, None),
        (RANDOM_B64 + "=", None),
        (f"cl_ops_{RANDOM_HEX.upper()}", None),
        (f"cl_ops_{RANDOM_HEX[:63]}", "at most 252 random bits (63 characters)"),
        (f"cl_ops_{RANDOM_B64[:42]}", "at most 252 random bits (42 characters)"),
        (f"cl_ops_{RANDOM_DIGITS[:77]}", "at most 256 random bits"),  # 255.8, rounded
        ("x" * 40, "at most 240 random bits"),  # what the old rule (32 characters) let in
        ("a" * 32, "at most 128 random bits"),  # the review's example
        ("short", "at most 30 random bits"),
        # long enough, but plainly not random
        ("a" * 64, "it repeats one character"),
        (f"cl_ops_{HEX_64}", "its secret repeats a block of 16 characters"),
        ("correcthorsebatterystaple" * 2, "repeats a block of 25 characters"),
        ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopq", "a run of 26 repeated or consecutive"),
        (RANDOM_B64[:31] + "000000000000", "a run of 12 repeated or consecutive"),
        ("abab" * 16 + "c", "uses only 3 different characters"),
        ("aabbaabbababbbaaabab" * 3 + "abbbbaababa", "uses only 2 different characters"),
        # not sendable as a bearer token
        ("has spaces " * 4, "bearer token"),
        ("é" * 40, "bearer token"),
        ("a" * 513, "bearer token"),
    ],
)
def test_admin_key_problem(key: str, problem: str | None) -> None:
    found = admin_key_problem(key)
    assert found is None if problem is None else problem in (found or ""), found
    if found and "bearer token" not in found:
        assert "at least 256 random bits" in found  # the message says what is accepted


def test_the_test_suites_admin_key_passes() -> None:
    """tests/conftest.py's TEST_ADMIN_KEY: `cl_testadmin_` and 43 random base64url characters."""
    for _ in range(200):
        assert admin_key_problem(f"cl_testadmin_{new_secret()}") is None


@pytest.mark.parametrize("seed", range(300))
def test_random_secrets_of_the_documented_forms_pass(seed: int) -> None:
    """`openssl rand -hex 32`, `secrets.token_urlsafe(32)` and 78 random digits never fail
    (seeded, so the run is the same every time)."""
    chance = random.Random(seed)
    raw = chance.randbytes(32)
    assert admin_key_problem(f"cl_ops_{raw.hex()}") is None
    assert admin_key_problem(base64.urlsafe_b64encode(raw).decode().rstrip("=")) is None
    assert admin_key_problem("".join(chance.choices(string.digits, k=78))) is None


@pytest.mark.parametrize(
    ("secret", "bits"),
    [
        ("0123", 4 * math.log2(10)),
        ("00ff", 16.0),
        ("00FF", 16.0),
        ("00Ff", 24.0),  # mixed case is not one hex alphabet: base64's 6 bits
        ("zz", 12.0),
        ("", 0.0),
    ],
)
def test_secret_bits(secret: str, bits: float) -> None:
    assert secret_bits(secret) == pytest.approx(bits)


@pytest.mark.parametrize(
    ("text", "period"),
    [("", 0), ("a", 1), ("aaaa", 1), ("abab", 2), ("abcabca", 3), ("abcd", 4), ("aab", 3)],
)
def test_shortest_period(text: str, period: int) -> None:
    assert shortest_period(text) == period


@given(st.text(alphabet="abc", max_size=40))
def test_shortest_period_is_the_smallest_repeating_block(text: str) -> None:
    p = shortest_period(text)
    assert all(text[i] == text[i - p] for i in range(p, len(text)))
    assert not any(all(text[i] == text[i - q] for i in range(q, len(text))) for q in range(1, p))


@pytest.mark.parametrize(
    ("text", "run"),
    [("", 0), ("a", 1), ("aaab", 3), ("abcd", 4), ("dcba", 4), ("abcba", 3), ("a1b2", 1)],
)
def test_longest_run(text: str, run: int) -> None:
    assert longest_run(text) == run


@pytest.mark.parametrize(
    ("origin", "revoked", "current", "named"),
    [
        (FROM_ADMIN_VARIABLE, False, "other", True),  # "rotated" by changing the variable
        (FROM_ADMIN_VARIABLE, False, None, True),  # the variable unset: still valid
        (FROM_ADMIN_VARIABLE, False, "old", False),  # the current one
        (FROM_ADMIN_VARIABLE, True, "other", False),  # revoked: done right
        (FROM_COMMAND, False, "other", False),  # made by `keys create`: not the variable's
        (FROM_DEV_KEY, False, "other", False),
    ],
)
def test_forgotten_admin_keys(origin: str, revoked: bool, current: str | None, named: bool) -> None:
    gone = NOW if revoked else None
    stored = KeyRow("old", "x", frozenset({ADMIN}), b"h" * 32, NOW, gone, origin=origin)
    assert forgotten_admin_keys([stored], current) == (["old"] if named else [])


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("crm", True),
        ("newsletter tool", True),
        ("dev-admin", True),
        ("LEDGER_ADMIN_KEY", True),
        ("", False),
        (" crm", False),
        ("ada@example.com", False),
        ("x" * 65, False),
    ],
)
def test_key_names(name: str, ok: bool) -> None:
    assert (name_problem(name) is None) is ok
