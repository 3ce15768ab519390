"""The admin key's strength: at least 256 random bits counted by the alphabet its secret is
written in, and no repeated block, long run or handful of characters (LEDGER_ADMIN_KEY)."""

from __future__ import annotations

import base64
import math
import random
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.identity.api_keys import (
    admin_key_problem,
    longest_run,
    secret_bits,
    shortest_period,
)
from services.identity.secrets import new_key as new_secret

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
