"""API keys: their format and id, their keyed hash (and the legacy one), the Authorization
header, scopes, forgotten admin keys and the check of a presented key against stored
rows."""

from __future__ import annotations

import hashlib
import hmac
import re
import string
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.identity.api_keys import (
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
    name_problem,
    new_key,
    parse_scopes,
    permits,
)
from services.identity.secrets import new_key as new_secret

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
    assert SCOPES == ("decide", "record", "notices", "requests", "audit", "audience", "admin")


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
