"""The state feed's summary (services/rules/state_summary.py) and its Avro record
(schemas/feeds.py)."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_writer
from hypothesis import given, settings
from hypothesis import strategies as st

from projections.outdating import Notices
from projections.state import Fact, FactKey, Position, fold
from schemas.codec import DEFAULT_SCHEMA_DIR, MAGIC, CodecError, default_codec, schema_fingerprint
from schemas.events import Event
from schemas.feeds import (
    FEED_SCHEMA_DIR,
    decode_subject_state,
    encode_subject_state,
    subject_state_fingerprint,
)
from services.rules.decisions import decide
from services.rules.state_summary import (
    Entry,
    allowed_until,
    entries,
    subject_state_record,
)
from tests.properties import examples
from tests.unit.event_log import (
    CATALOGUE,
    NOW,
    Spec,
    dm_lift,
    dm_object,
    end_relationship,
    grant,
    log,
    logs,
    relationship,
    restrict,
    withdraw,
)
from tests.unit.services.rules.test_erasure_rules import instants, subject_states
from tests.unit.services.rules.test_notices import grant_logs, grants_log, published_sets

DAY = timedelta(days=1)
DM = [(p.id, c) for p in CATALOGUE.marketing_purposes() for c in p.channels]


def test_entries_are_every_direct_marketing_purpose_and_channel_in_catalogue_order() -> None:
    got = [(e.purpose, e.channel) for e in entries({}, CATALOGUE, NOW)]
    assert got == DM
    assert ("customer_relationship", "email") not in got  # not direct marketing
    assert ("newsletter", "email") in got and ("cookies_marketing", "web") in got


def _entry(specs: list[Spec], purpose: str, channel: str) -> Entry:
    (found,) = [
        e
        for e in entries(fold(log(specs)), CATALOGUE, NOW)
        if (e.purpose, e.channel) == (purpose, channel)
    ]
    return found


P = pytest.param
TABLE = [
    P([], "newsletter", "email", False, "no_consent", None, id="nothing-recorded"),
    P([grant("newsletter")], "newsletter", "email", True, "consent_given", None, id="grant"),
    P([grant("newsletter", expires=NOW + DAY)], "newsletter", "email", True, "consent_given",
      NOW + DAY, id="grant-with-expiry"),
    P([grant("newsletter", expires=NOW - DAY)], "newsletter", "email", False, "consent_expired",
      None, id="expired-grant-has-no-until"),
    P([grant("marketing_partners"), withdraw(None, "sms")], "marketing_partners", "sms", False,
      "consent_withdrawn", None, id="withdrawn-on-one-channel"),
    P([grant("marketing_partners"), withdraw(None, "sms")], "marketing_partners", "post", True,
      "consent_given", None, id="other-channel-keeps-grant"),
    P([grant("marketing_own"), dm_object("email")], "marketing_own", "email", False,
      "objected_direct_marketing", None, id="objection"),
    P([dm_object(), dm_lift(), grant("marketing_own", "sms")], "marketing_own", "sms", True,
      "consent_given", None, id="objection-lifted"),
    P([relationship("contract", until=NOW + DAY)], "marketing_own", "post", True,
      "legitimate_interest", NOW + DAY, id="li-carried-by-a-relationship-until"),
    P([relationship("contract", until=NOW + DAY),
       relationship("legitimate_interest", until=NOW + 3 * DAY)], "marketing_own", "post", True,
      "legitimate_interest", NOW + 3 * DAY, id="latest-end-of-the-carrying-relationships"),
    P([relationship("contract", until=NOW + DAY), relationship("legitimate_interest")],
      "marketing_own", "post", True, "legitimate_interest", None, id="an-open-relationship"),
    P([relationship("contract"), end_relationship()], "marketing_own", "post", False,
      "no_legal_basis", None, id="relationship-ended"),
    P([grant("newsletter", expires=NOW + DAY), restrict("legal_claims")], "newsletter", "email",
      False, "restricted", None, id="restricted"),
]  # fmt: skip


@pytest.mark.parametrize(("specs", "purpose", "channel", "allowed", "reason", "until"), TABLE)
def test_summary_table(
    specs: list[Spec],
    purpose: str,
    channel: str,
    allowed: bool,
    reason: str,
    until: datetime | None,
) -> None:
    assert _entry(specs, purpose, channel) == Entry(purpose, channel, allowed, reason, until)


@given(logs)
def test_every_entry_is_the_decision(pairs: list[tuple[Event, Position]]) -> None:
    state = fold(pairs)
    for entry in entries(state, CATALOGUE, NOW):
        purpose = CATALOGUE.purposes[entry.purpose]
        decision = decide(state, purpose, entry.channel, NOW)
        assert (entry.allowed, entry.reason) == (decision.allowed, decision.reason)


@given(logs)
def test_until_is_when_the_clock_alone_ends_an_allowed_entry(
    pairs: list[tuple[Event, Position]],
) -> None:
    state = fold(pairs)
    for entry in entries(state, CATALOGUE, NOW):
        purpose = CATALOGUE.purposes[entry.purpose]
        if not entry.allowed:
            assert entry.until is None
        elif entry.until is None:
            assert decide(state, purpose, entry.channel, NOW + 3650 * DAY).allowed
        else:
            assert entry.until > NOW
            before = entry.until - timedelta(microseconds=1)
            assert decide(state, purpose, entry.channel, before).allowed
            assert not decide(state, purpose, entry.channel, entry.until).allowed


def _entries_one_by_one(state: dict[FactKey, Fact], now: datetime, notices: Notices) -> list[Entry]:
    """The summary as it reads: the rules asked once for every purpose and channel."""
    out = []
    for purpose in CATALOGUE.marketing_purposes():
        for channel in purpose.channels:
            d = decide(state, purpose, channel, now, notices)
            until = allowed_until(state, purpose, d, now, notices)
            out.append(Entry(purpose.id, channel, d.allowed, d.reason, until))
    return out


@settings(max_examples=examples(300), deadline=None, database=None)
@given(subject_states(), published_sets, instants)
def test_channels_answered_alike_are_the_answers_one_by_one(
    state: dict[FactKey, Fact], notices: Notices, now: datetime
) -> None:
    assert entries(state, CATALOGUE, now, notices) == _entries_one_by_one(state, now, notices)


@settings(max_examples=examples(200), deadline=None, database=None)
@given(grant_logs, published_sets, instants)
def test_grants_under_notices_are_answered_alike_one_by_one(
    items: list[tuple[str | None, Spec]], notices: Notices, now: datetime
) -> None:
    state = fold(grants_log(items))
    assert entries(state, CATALOGUE, now, notices) == _entries_one_by_one(state, now, notices)


# --- the Avro record -------------------------------------------------------------------------

RECORD: dict[str, Any] = {
    "subject_id": "cust-4711",
    "computed_at": NOW,
    "source": {"partition": 3, "next_offset": 42},
    "entries": [
        {
            "purpose": "newsletter",
            "channel": "email",
            "allowed": True,
            "reason": "consent_given",
            "until": NOW + DAY,
        },
        {
            "purpose": "marketing_own",
            "channel": "sms",
            "allowed": False,
            "reason": "objected_direct_marketing",
            "until": None,
        },
    ],
}
GOLDEN = (
    "c301{fp}12637573742d3437313180c0dfd0cad4a306065404146e6577736c65747465720a656d61696c01"
    "1a636f6e73656e745f676976656e0280c09aaeced9a3061a6d61726b6574696e675f6f776e06736d7300"
    "326f626a65637465645f6469726563745f6d61726b6574696e670000"
)


def test_the_record_round_trips_and_its_bytes_are_pinned() -> None:
    # a released schema is never edited: its fingerprint is in records already published
    assert subject_state_fingerprint().hex() == "fd8e91f5871f213b"
    value = encode_subject_state(RECORD)
    assert value.hex() == GOLDEN.format(fp=subject_state_fingerprint().hex())
    assert decode_subject_state(value) == RECORD


def test_a_record_built_from_a_state_round_trips() -> None:
    state = fold(log([grant("newsletter", "email", NOW + DAY), dm_object("sms")]))
    record = subject_state_record("s-1", state, CATALOGUE, NOW, partition=1, next_offset=7)
    decoded = decode_subject_state(encode_subject_state(record))
    assert decoded == record
    assert len(decoded["entries"]) == len(DM)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (b"\x00\x01", "single-object"),
        (b"\xc3\x01" + b"\xff" * 8 + b"\x00", "fingerprint"),
        (b"\xc3\x01" + b"{fp}", "cannot decode"),
    ],
)
def test_undecodable_values_are_codec_errors(value: bytes, message: str) -> None:
    if value.endswith(b"{fp}"):
        value = value[:-4] + subject_state_fingerprint()
    with pytest.raises(CodecError, match=message):
        decode_subject_state(value)


def test_naive_times_are_refused() -> None:
    with pytest.raises(CodecError, match="naive"):
        encode_subject_state({**RECORD, "computed_at": NOW.replace(tzinfo=None)})


def test_the_schema_file_is_apart_from_the_event_schemas() -> None:
    path = FEED_SCHEMA_DIR / "SubjectState.v1.avsc"
    raw = json.loads(path.read_text(encoding="utf-8"))
    assert raw["name"] == "SubjectState" and raw["namespace"] == "ledger.feeds"
    assert path.parent != DEFAULT_SCHEMA_DIR
    assert "SubjectState" not in default_codec().schemas()
    assert schema_fingerprint(raw) == subject_state_fingerprint()

    def documented(fields: list[dict[str, Any]]) -> None:
        for field in fields:
            assert field.get("doc"), f"field {field['name']} has no doc"
            kind = field["type"]
            if isinstance(kind, dict) and kind.get("type") == "record":
                documented(kind["fields"])
            if isinstance(kind, dict) and kind.get("type") == "array":
                documented(kind["items"]["fields"])

    documented(raw["fields"])


@given(st.lists(st.sampled_from([dm_object(), dm_lift(), grant("newsletter")]), max_size=5))
def test_any_summary_encodes(specs: list[Spec]) -> None:
    record = subject_state_record("s", fold(log(specs)), CATALOGUE, NOW, partition=0, next_offset=0)
    assert decode_subject_state(encode_subject_state(record)) == record


def _written_by_fastavro(record: dict[str, Any]) -> bytes:
    parsed = parse_schema(
        json.loads((FEED_SCHEMA_DIR / "SubjectState.v1.avsc").read_text(encoding="utf-8"))
    )
    buffer = io.BytesIO()
    schemaless_writer(buffer, parsed, record, disable_tuple_notation=True)
    return MAGIC + subject_state_fingerprint() + buffer.getvalue()


moments = st.none() | st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)
feed_entries = st.fixed_dictionaries(
    {
        "purpose": st.sampled_from(["newsletter", "marketing_own", "é" * 70]),
        "channel": st.sampled_from(["email", "sms", "web"]),
        "allowed": st.booleans(),
        "reason": st.sampled_from(["consent_given", "no_consent", "x" * 200]),
        "until": moments,
    }
)


@settings(max_examples=examples(300), deadline=None, database=None)
@given(
    st.text(min_size=1, max_size=80),
    st.integers(0, 2**31 - 1),
    st.integers(0, 2**63 - 1),
    st.lists(feed_entries, max_size=80),
)
def test_the_record_is_the_bytes_fastavro_writes(
    subject_id: str, partition: int, next_offset: int, items: list[dict[str, Any]]
) -> None:
    record = {
        "subject_id": subject_id,
        "computed_at": NOW,
        "source": {"partition": partition, "next_offset": next_offset},
        "entries": items,
    }
    expected = _written_by_fastavro(record)
    assert encode_subject_state(record) == expected
    assert encode_subject_state(record) == expected  # the entries' bodies now cached
    assert decode_subject_state(expected) == record


@given(logs)
def test_a_summary_is_the_bytes_fastavro_writes(pairs: list[tuple[Event, Position]]) -> None:
    record = subject_state_record("s", fold(pairs), CATALOGUE, NOW, partition=2, next_offset=9)
    assert encode_subject_state(record) == _written_by_fastavro(record)
