"""The journal's payload text: the projector's direct builder writes exactly the JSON of
`event_payload`, for every event type, before and after a trip through the codec."""

from __future__ import annotations

import json

from hypothesis import given, settings

from projections.journal import event_payload, payload_json
from schemas.events import Event
from tests.properties import examples
from tests.unit.codec_samples import CODEC
from tests.unit.event_strategies import any_event


def _reference(event: Event) -> str:
    return json.dumps(event_payload(event), separators=(",", ":"))


@settings(max_examples=examples(300), deadline=None, database=None)
@given(any_event())
def test_payload_text_equals_the_json_of_event_payload(event: Event) -> None:
    assert payload_json(event) == _reference(event)
    decoded = CODEC.decode(CODEC.encode(event))
    assert payload_json(decoded) == _reference(decoded)
