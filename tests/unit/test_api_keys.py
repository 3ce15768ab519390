"""API keys: their format and id, their hash, the Authorization header, scopes and the check
of a presented key against stored rows."""

from __future__ import annotations

import hashlib
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
    HASHED_ID_PREFIX,
    RECORD,
    SCOPES,
    Caller,
    KeyRefused,
    KeyRow,
    admin_key_problem,
    authenticate,
    bearer_key,
    format_key,
    key_hash,
    key_id,
    name_problem,
    new_key,
    parse_scopes,
    permits,
)

IDS = st.text(string.ascii_letters + string.digits, min_size=1, max_size=40)
SECRETS = st.text(string.ascii_letters + string.digits + "_-", min_size=1, max_size=80)
NOW = datetime(2026, 11, 25, tzinfo=UTC)


def row(key: str, scopes: frozenset[str], revoked: bool = False) -> KeyRow:
    return KeyRow(key_id(key), "crm", scopes, key_hash(key), NOW, NOW if revoked else None)


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
        assert found not in key_hash(text).hex()  # the id does not reveal the stored hash
    else:
        assert re.fullmatch(r"[A-Za-z0-9]{1,40}", found) and text.startswith(f"cl_{found}_")


def test_new_keys_are_formatted_random_and_long() -> None:
    made = [new_key() for _ in range(50)]
    assert len({key for _, key in made}) == 50
    for kid, key in made:
        assert key_id(key) == kid and re.fullmatch(r"[0-9a-f]{16}", kid)
        assert admin_key_problem(key) is None
        assert len(key) - len(f"cl_{kid}_") == 43  # 256 bits, base64url without padding


@given(st.text(min_size=1, max_size=100))
def test_the_hash_is_sha256_of_the_key(key: str) -> None:
    assert key_hash(key) == hashlib.sha256(key.encode()).digest()
    assert len(key_hash(key)) == 32


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
    caller = authenticate(f"Bearer {key}", {stored.key_id: stored})
    assert caller == Caller(stored.key_id, "crm", frozenset({DECIDE}))


def test_a_hand_chosen_key_authenticates_under_its_hashed_id() -> None:
    key = "x" * 40
    stored = row(key, frozenset({ADMIN}))
    assert authenticate(f"Bearer {key}", {stored.key_id: stored}).scopes == {ADMIN}


@pytest.mark.parametrize(
    ("presented", "why"),
    [
        ("unknown", "not valid"),
        ("wrong secret", "not valid"),
        ("revoked", "revoked"),
    ],
)
def test_authenticate_refuses(presented: str, why: str) -> None:
    kid, key = new_key()
    stored = row(key, frozenset({ADMIN}), revoked=presented == "revoked")
    rows = {kid: stored}
    header = {
        "unknown": f"Bearer {new_key()[1]}",
        "wrong secret": f"Bearer {format_key(kid, 'guess')}",
        "revoked": f"Bearer {key}",
    }[presented]
    with pytest.raises(KeyRefused, match=why):
        authenticate(header, rows)


@pytest.mark.parametrize(
    ("scopes", "needed", "allowed"),
    [
        ({DECIDE}, DECIDE, True),
        ({DECIDE}, RECORD, False),
        ({DECIDE, RECORD}, RECORD, True),
        ({RECORD}, AUDIT, False),
        ({AUDIT}, ADMIN, False),
        ({ADMIN}, DECIDE, True),
        ({ADMIN}, RECORD, True),
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


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("cl_ops_" + "0123456789abcdef" * 4, None),
        ("Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5Cg==", None),
        ("short", "at least 32"),
        ("x" * 31, "at least 32"),
        ("has spaces " * 4, "bearer token"),
        ("é" * 40, "bearer token"),
        ("a" * 513, "bearer token"),
    ],
)
def test_admin_key_problem(key: str, problem: str | None) -> None:
    found = admin_key_problem(key)
    assert found is None if problem is None else problem in (found or "")


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
