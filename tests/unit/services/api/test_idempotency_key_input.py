"""An Idempotency-Key that could be personal data (an address, a phone number) against the app
in-process: refused with a 400 naming the header, before anything is claimed or sent. How keys
are stored is in tests/integration/test_idempotency_keys.py."""

from __future__ import annotations

import pytest

from tests.unit.services.api.in_process import PROBLEM, InProcess

BODY = {"purpose": "newsletter", "channel": "email", "method": "form"}


@pytest.mark.parametrize(
    "key",
    [
        "newsletter-signup:alice@example.com",
        "+358401234567",
        "040-123-4567",
        "(040)1234567",
    ],
)
async def test_a_key_that_could_be_personal_data_is_refused_and_nothing_is_recorded(
    served: InProcess, key: str
) -> None:
    headers = {"Idempotency-Key": key}
    refused = await served.api.post("/v1/subjects/idem-1/consents", json=BODY, headers=headers)
    assert refused.status_code == 400, refused.text
    assert refused.headers["content-type"] == PROBLEM
    (error,) = refused.json()["errors"]
    assert error["field"] == "Idempotency-Key"
    # nothing sent, and nothing claimed: the fake ledger has no database to claim the key in
    assert served.fake.publisher.sent == []
