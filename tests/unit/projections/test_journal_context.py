"""A context is a nested record with bytes: the journal's payload holds it as JSON, its
ciphertext base64, the same from both payload builders (chain verification compares them)."""

from __future__ import annotations

import base64
import json
from uuid import UUID

from projections.chain_verify import payload_difference
from projections.journal import event_payload, payload_json
from schemas import events as ev
from schemas.events import Event
from tests.unit.codec_samples import CODEC, at

SEALED = {
    "client_address": b"\x01" + bytes(12) + b"\xaa" * 16,
    "user_agent": None,
    "page": "unsubscribe",
    "page_version": None,
    "language": "en",
    "one_click": True,
    "captured": ["client_address", "page", "language", "one_click"],
    "asserted": [],
}
EVENT = Event(
    type=ev.CONSENT_WITHDRAWN,
    event_id=UUID("00000000-0000-4000-8000-0000000000c3"),
    subject_id="sub-ctx",
    occurred_at=at(2025, 3, 1),
    recorded_at=at(2025, 3, 1),
    data={
        "purpose": "newsletter",
        "channel": "email",
        "reason": None,
        "campaign_id": None,
        "context": SEALED,
    },
)


def test_the_payload_holds_the_context_as_json_with_base64_ciphertext() -> None:
    text = payload_json(EVENT)
    assert json.loads(text) == json.loads(json.dumps(event_payload(EVENT)))
    stored = json.loads(text)["context"]
    assert base64.b64decode(stored["client_address"]) == SEALED["client_address"]
    assert stored["captured"] == SEALED["captured"] and stored["one_click"] is True
    assert payload_difference(text, CODEC.decode(CODEC.encode(EVENT))) is None


def test_a_payload_from_before_the_context_still_matches_its_event() -> None:
    older = Event(**{**{n: getattr(EVENT, n) for n in Event.__dataclass_fields__},
                     "data": {k: v for k, v in EVENT.data.items() if k != "context"}})  # fmt: skip
    assert payload_difference(payload_json(older), CODEC.decode(CODEC.encode(older))) is None
    assert payload_difference(payload_json(older), EVENT) == "context"
