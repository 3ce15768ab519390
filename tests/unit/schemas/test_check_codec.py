"""The contact-check evidence record: its schema file, single-object framing and digests."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.check_codec import (
    CHECK_SCHEMA_DIR,
    RECIPIENT_KINDS,
    ContactCheck,
    check_headers,
    decode_check,
    encode_check,
    schema_name,
)
from schemas.codec import MAGIC, CodecError, schema_fingerprint
from services.identity.identities import blind_index
from services.proof.contact_checks import (
    email_keys,
    emails_digest,
    recipients_digest,
    subject_keys,
    subjects_digest,
)

SCHEMA = CHECK_SCHEMA_DIR / "ContactCheckPerformed.v1.avsc"
KEY = bytes(range(32))


def check(**overrides: object) -> ContactCheck:
    fields: dict[str, object] = {
        "check_id": uuid.UUID(int=7),
        "campaign_id": "spring-2026",
        "purpose": "newsletter",
        "channel": "email",
        "checked_at": datetime(2026, 3, 1, 9, 30, 0, 123456, tzinfo=UTC),
        "snapshot_token": "czEuMy40",
        "recipient_kind": "subjects",
        "requested": 3,
        "allowed": 1,
        "denied": 2,
        "denied_by_reason": {"no_consent": 1, "consent_withdrawn": 1},
        "recipients_digest": "a" * 64,
        "allowed_digest": "b" * 64,
        **overrides,
    }
    return ContactCheck(**fields)  # type: ignore[arg-type]


def test_the_schema_file_documents_every_field_and_names_the_kinds() -> None:
    schema = json.loads(SCHEMA.read_text())
    assert (schema["namespace"], schema["name"]) == ("ledger.checks", "ContactCheckPerformed")
    assert schema["doc"] and all(field["doc"] for field in schema["fields"])
    names = [field["name"] for field in schema["fields"]]
    assert names == list(ContactCheck.__dataclass_fields__)
    (kind,) = [f["type"] for f in schema["fields"] if f["name"] == "recipient_kind"]
    assert tuple(kind["symbols"]) == RECIPIENT_KINDS


def test_single_object_framing_with_the_schema_fingerprint() -> None:
    value = encode_check(check())
    assert value[:2] == MAGIC
    assert value[2:10] == schema_fingerprint(json.loads(SCHEMA.read_text()))
    assert dict(check_headers(check())) == {
        "schema": b"ContactCheckPerformed.v1",
        "check_id": b"00000000-0000-0000-0000-000000000007",
    }
    assert schema_name() == "ContactCheckPerformed.v1"


@given(
    st.integers(0, 10**6),
    st.dictionaries(st.sampled_from(["no_consent", "unknown_subject"]), st.integers(0, 10**6)),
    st.sampled_from(RECIPIENT_KINDS),
)
def test_round_trip(allowed: int, by_reason: dict[str, int], kind: str) -> None:
    original = check(
        allowed=allowed,
        denied=sum(by_reason.values()),
        denied_by_reason=by_reason,
        recipient_kind=kind,
    )
    assert decode_check(encode_check(original)) == original


def test_foreign_values_and_naive_times_are_refused() -> None:
    value = encode_check(check())
    for broken in (b"", value[:1] + b"\x00" + value[2:], value[:2] + b"\x00" * 8 + value[10:]):
        with pytest.raises(CodecError):
            decode_check(broken)
    with pytest.raises(CodecError, match="trailing"):
        decode_check(value + b"\x00")
    with pytest.raises(CodecError, match="naive"):
        encode_check(check(checked_at=datetime(2026, 3, 1)))
    with pytest.raises(CodecError):
        encode_check(check(recipient_kind="phones"))


def test_the_digest_recipe() -> None:
    keys = subject_keys(["s-2", "s-1", "s-2"])
    expected = hashlib.sha256(b"subject:s-1\nsubject:s-2").hexdigest()
    assert recipients_digest(keys) == expected
    assert recipients_digest([]) == hashlib.sha256(b"").hexdigest()
    index = blind_index(KEY, "email", "ada@example.com")
    assert email_keys(["Ada@example.com", "??"], {"Ada@example.com": index}, KEY) == [
        f"email:{index.hex()}",
        f"invalid:{blind_index(KEY, 'invalid', '??').hex()}",
    ]
    assert subjects_digest(["s-2", "s-1"]) == expected
    both = f"email:{index.hex()}\ninvalid:{blind_index(KEY, 'invalid', '??').hex()}"
    assert emails_digest(["??", "ADA@example.com", "ada@example.com"], KEY) == (
        hashlib.sha256(both.encode()).hexdigest()
    )
