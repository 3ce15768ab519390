"""Webhook signatures against the Standard Webhooks specification's published example and its
Python library (the `standardwebhooks` package), an implementation written apart from ours."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from services.webhooks.signing import (
    PREFIX,
    SECRET_BYTES,
    new_secret,
    secret_key,
    signature_header,
    webhook_headers,
)

# the example of the specification's reference libraries
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

_ids = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E, blacklist_characters="."),
    min_size=1,
    max_size=80,
)
_bodies = st.dictionaries(st.text(max_size=10), st.integers() | st.text(max_size=20), max_size=5)


def test_the_published_example_signs_alike() -> None:
    assert signature_header([SPEC_SECRET], SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE


def test_a_new_secret_is_whsec_and_32_random_bytes() -> None:
    first, second = new_secret(), new_secret()
    assert first != second
    for secret in (first, second):
        assert secret.startswith(PREFIX)
        assert len(base64.b64decode(secret[len(PREFIX) :], validate=True)) == SECRET_BYTES
        assert secret_key(secret) == base64.b64decode(secret[len(PREFIX) :])


def test_several_secrets_give_several_signatures_in_order() -> None:
    other = new_secret()
    header = signature_header([SPEC_SECRET, other], SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY)
    first, second = header.split(" ")
    assert first == SPEC_SIGNATURE
    assert second == signature_header([other], SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY)


@given(msg_id=_ids, body=_bodies, rotating=st.booleans())
def test_the_standard_webhooks_library_verifies_what_we_send(
    msg_id: str, body: dict[str, object], rotating: bool
) -> None:
    old, new = new_secret(), new_secret()
    secrets = [new, old] if rotating else [new]
    now = int(datetime.now(UTC).timestamp())
    raw = json.dumps(body).encode()
    headers = webhook_headers(secrets, msg_id, now, raw)
    assert headers["content-type"] == "application/json"
    assert headers["webhook-id"] == msg_id
    assert headers["webhook-timestamp"] == str(now)
    assert Webhook(new).verify(raw, headers) == body
    if rotating:
        assert Webhook(old).verify(raw, headers) == body
    else:
        with pytest.raises(WebhookVerificationError):
            Webhook(old).verify(raw, headers)


@given(msg_id=_ids, body=st.binary(max_size=200), timestamp=st.integers(0, 2**33))
def test_our_signature_is_the_library_s(msg_id: str, body: bytes, timestamp: int) -> None:
    secret = new_secret()
    sent_at = datetime.fromtimestamp(timestamp, UTC)
    ours = signature_header([secret], msg_id, timestamp, body)
    assert ours == Webhook(secret).sign(msg_id, sent_at, body)


def test_a_tampered_body_does_not_verify() -> None:
    secret = new_secret()
    now = int(datetime.now(UTC).timestamp())
    headers = webhook_headers([secret], "evt_1", now, b'{"a": 1}')
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(b'{"a": 2}', headers)


@pytest.mark.parametrize(
    ("secret", "reason"),
    [
        ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_"),
        ("whsec_not base64!", "whsec_"),
        ("whsec_" + base64.b64encode(b"short").decode(), "24 bytes"),
        ("whsec_" + "A" * 300, "whsec_"),
    ],
)
def test_a_malformed_secret_is_refused(secret: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        signature_header([secret], "evt_1", 1, b"{}")


@pytest.mark.parametrize(
    ("secrets", "msg_id", "timestamp"),
    [
        ([], "evt_1", 1),
        ([SPEC_SECRET], "evt.1", 1),
        ([SPEC_SECRET], "", 1),
        ([SPEC_SECRET], "e", -1),
    ],
)
def test_what_cannot_be_signed_is_refused(secrets: list[str], msg_id: str, timestamp: int) -> None:
    with pytest.raises(ValueError):
        signature_header(secrets, msg_id, timestamp, b"{}")
