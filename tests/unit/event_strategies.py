"""Hypothesis strategies for events of every type, with any field values their schemas and
the ledger's limits (schemas/event_limits.py) allow: the codec's round trip, the journal's
payloads, history files and the codec fuzzer draw from them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import strategies as st

from schemas import events
from schemas.events import Actor, Event, Source

#: any text the ledger stores: U+0000 is outside its limits (schemas/event_limits.py)
texts = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=24)
optional_texts = st.none() | texts
timestamps = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)
purposes = st.lists(st.sampled_from(["newsletter", "analytics", "profiling", "ads"]) | texts)
channels = st.none() | st.sampled_from(events.CHANNELS)

DATA: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    events.CONSENT_GRANTED: st.fixed_dictionaries(
        {
            "purpose": texts,
            "channel": channels,
            "expires_at": st.none() | timestamps,
            "request_event_id": st.none() | st.uuids(),
            "evidence": optional_texts,
        }
    ),
    events.CONSENT_WITHDRAWN: st.fixed_dictionaries(
        {
            "purpose": optional_texts,
            "channel": channels,
            "reason": optional_texts,
            "campaign_id": optional_texts,
        }
    ),
    events.DIRECT_MARKETING_OBJECTED: st.fixed_dictionaries(
        {"channel": channels, "campaign_id": optional_texts}
    ),
    events.IDENTIFIER_LINKED: st.fixed_dictionaries(
        {
            "identifier_type": st.sampled_from(events.IDENTIFIER_TYPES),
            "blind_index": st.binary(min_size=32, max_size=32),
            "ciphertext": st.binary(max_size=300),
        }
    ),
    events.IDENTIFIER_UNLINKED: st.fixed_dictionaries(
        {
            "identifier_type": st.sampled_from(events.IDENTIFIER_TYPES),
            "blind_index": st.binary(min_size=32, max_size=32),
        }
    ),
    events.DIRECT_MARKETING_OBJECTION_LIFTED: st.fixed_dictionaries(
        {"channel": channels, "evidence": texts}
    ),
    events.PROCESSING_OBJECTED: st.fixed_dictionaries({"purpose": texts}),
    events.PROCESSING_OBJECTION_RESOLVED: st.fixed_dictionaries(
        {
            "purpose": texts,
            "outcome": st.sampled_from(events.RESOLUTION_OUTCOMES),
            "evidence": optional_texts,
        }
    ),
    events.PROCESSING_RESTRICTED: st.fixed_dictionaries(
        {"ground": st.sampled_from(events.RESTRICTION_GROUNDS), "purposes": purposes}
    ),
    events.RESTRICTION_LIFTED: st.fixed_dictionaries(
        {
            "ground": st.none() | st.sampled_from(events.RESTRICTION_GROUNDS),
            "purposes": purposes,
            "evidence": optional_texts,
            "subject_informed_at": st.none() | timestamps,
        }
    ),
    events.RELATIONSHIP_RECORDED: st.fixed_dictionaries(
        {
            "basis": st.sampled_from(events.RELATIONSHIP_BASES),
            "purposes": purposes,
            "valid_until": st.none() | timestamps,
        }
    ),
    events.RELATIONSHIP_ENDED: st.fixed_dictionaries(
        {
            "basis": st.none() | st.sampled_from(events.RELATIONSHIP_BASES),
            "purposes": purposes,
            "evidence": optional_texts,
        }
    ),
    events.SUBJECT_ERASED: st.fixed_dictionaries(
        {
            "ground": st.sampled_from(events.ERASURE_GROUNDS),
            "request_id": st.none() | st.uuids(),
        }
    ),
    events.RIGHTS_REQUEST_RECEIVED: st.fixed_dictionaries(
        {
            "request_id": st.uuids(),
            "kind": st.sampled_from(events.REQUEST_KINDS),
            "reference": optional_texts,
        }
    ),
    events.RIGHTS_REQUEST_IDENTITY_VERIFIED: st.fixed_dictionaries(
        {"request_id": st.uuids(), "evidence": optional_texts}
    ),
    events.RIGHTS_REQUEST_EXTENDED: st.fixed_dictionaries(
        {"request_id": st.uuids(), "months": st.integers(1, 2), "reason": texts}
    ),
    events.RIGHTS_REQUEST_COMPLETED: st.fixed_dictionaries(
        {"request_id": st.uuids(), "evidence": optional_texts}
    ),
    events.RIGHTS_REQUEST_REFUSED: st.fixed_dictionaries(
        {"request_id": st.uuids(), "reason": texts}
    ),
    events.LINKS_REVOKED: st.fixed_dictionaries({"reason": optional_texts}),
    events.CONSENT_REQUESTED: st.fixed_dictionaries(
        {
            "purpose": texts,
            "channel": texts,
            "expires_at": timestamps,
            "language": st.none() | st.sampled_from(events.LANGUAGES),
        }
    ),
    events.NOTICE_PUBLISHED: st.fixed_dictionaries(
        {
            "version": texts,
            "effective_from": timestamps,
            "text_sha256": texts,
            "url": texts,
            "material": st.booleans(),
            "purposes": purposes,
            "language": optional_texts,
        }
    ),
    events.PURPOSE_DEFINED: st.fixed_dictionaries(
        {
            "purpose": texts,
            "version": st.integers(1, 2**31 - 1),
            "in_force_from": timestamps,
            "title": texts,
            "texts": st.lists(
                st.fixed_dictionaries(
                    {
                        "language": st.sampled_from(events.LANGUAGES),
                        "title": texts,
                        "description": texts,
                    }
                ),
                max_size=3,
            ),
            "basis": texts,
            "direct_marketing": st.booleans(),
            "channels": st.lists(st.sampled_from(events.CHANNELS), max_size=5),
            "dpv": texts,
            "recipients": st.lists(
                st.fixed_dictionaries(
                    {
                        "name": texts,
                        "country": st.sampled_from(["FI", "US"]),
                        "safeguard": optional_texts,
                        "safeguard_note": optional_texts,
                    }
                ),
                max_size=3,
            ),
            "retention": texts,
            "proof_retention": texts,
            "reconsent_on_material_change": st.booleans(),
            "browser_collectable": st.booleans(),
        }
    ),
    events.PURPOSE_RETIRED: st.fixed_dictionaries(
        {
            "purpose": texts,
            "version": st.integers(1, 2**31 - 1),
            "in_force_from": timestamps,
            "reason": optional_texts,
        }
    ),
}


@st.composite
def any_event(draw: st.DrawFn) -> Event:
    event_type = draw(st.sampled_from(events.EVENT_TYPES))
    methods: tuple[str, ...] = events.METHODS
    if event_type not in events.CONTEXT_EVENT_TYPES:
        methods = tuple(m for m in methods if m not in events.BROWSER_METHODS)
    return Event(
        type=event_type,
        event_id=draw(st.uuids()),
        subject_id=draw(st.from_regex(events.SUBJECT_ID_RE, fullmatch=True)),
        occurred_at=draw(timestamps),
        recorded_at=draw(timestamps),
        source=Source(draw(st.sampled_from(methods)), draw(optional_texts), draw(optional_texts)),
        actor=Actor(draw(st.sampled_from(events.ACTOR_TYPES)), draw(optional_texts)),
        notice_version=draw(optional_texts),
        data=draw(DATA[event_type]),
    )
