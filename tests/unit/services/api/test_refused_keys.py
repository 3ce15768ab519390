"""Refused API keys are logged and limited per client address (security review L4), against
the app in-process; the stored keys' hashes are in tests/integration/test_key_hardening.py."""

from __future__ import annotations

import logging

import pytest

from services.identity.api_keys import DECIDE, key_id
from services.identity.secrets import new_key as new_secret
from tests.unit.services.api.in_process import PROBLEM, bearer, serving

LIMIT = 3
ATTACKER = "203.0.113.9"
NEIGHBOUR = "203.0.113.10"


async def test_refused_keys_are_logged_and_limited_per_address(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with serving(LEDGER_FAILED_KEY_RATE_PER_MIN=str(LIMIT)) as served:
        good = served.key(DECIDE)
        kid = key_id(good)
        guessed = [f"cl_nosuchkey_{new_secret()}" for _ in range(LIMIT)]
        wrong_secret = f"cl_{kid}_{new_secret()}"
        caplog.set_level(logging.WARNING, logger="services.api.guard")
        async with served.client(address=ATTACKER) as attacker:
            for key in guessed:
                refused = await attacker.get("/v1/purposes", headers=bearer(key))
                assert refused.status_code == 401, refused.text
            over = await attacker.get("/v1/purposes", headers=bearer(wrong_secret))
            assert over.status_code == 429 and over.headers["content-type"] == PROBLEM
            assert "refused API keys" in over.json()["detail"]
            assert 1 <= int(over.headers["retry-after"]) <= 60 // LIMIT
            # held back: a generated key (256 random bits, which no one guesses) still gets
            # through, so a client sharing the address is not locked out by whoever guesses ...
            shared = await attacker.get("/v1/purposes", headers=bearer(good))
            assert shared.status_code == 200, shared.text
            # ... while a key that could be guessed learns nothing: right or wrong, 429
            weak = "x" * 20 + "y" * 20 + "z" * 20  # a hand-set key of old, stored before the rule
            served.fake.keys.add(DECIDE, name="old hand-set key", key=weak)
            for key in (weak, weak[:-1] + "a"):
                held = await attacker.get("/v1/purposes", headers=bearer(key))
                assert held.status_code == 429, key
        # another address, and the same keys from it, are not affected
        async with served.client(address=NEIGHBOUR) as neighbour:
            assert (await neighbour.get("/v1/purposes", headers=bearer(good))).status_code == 200
            assert (await neighbour.get("/v1/purposes", headers=bearer(weak))).status_code == 200
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    refusals = [line for line in lines if ATTACKER in line]
    assert len(refusals) == LIMIT + 1  # refusals while held back are not logged again
    assert all("GET /v1/purposes" in line for line in refusals)
    assert f"(key {kid})" in refusals[-1]  # a stored key's id, when the secret was wrong
    for line in lines:
        for key in (*guessed, wrong_secret, good):
            secret = key.split("_", 2)[2]  # after `cl_<id>_` (a secret may hold `_` too)
            assert key not in line and secret not in line
        assert "nosuchkey" not in line  # an id nobody stored is not echoed either
