"""A context is sealed under the subject's key, opens with it, and reads as erased without it."""

from __future__ import annotations

import base64
import os

from schemas.events import Context
from services.identity.context_sealing import open_context, seal_context

CONTEXT = Context(
    client_address="203.0.113.0/24",
    user_agent="Mozilla/5.0 (X11; Linux x86_64)",
    page="unsubscribe",
    page_version="3f9a0c61d2b4",
    language="en",
    one_click=False,
    captured=("client_address", "user_agent", "page", "page_version", "language", "one_click"),
)
KEY = os.urandom(32)


def test_the_personal_fields_are_ciphertext_and_the_rest_clear() -> None:
    record = seal_context(CONTEXT, "sub-1", KEY)
    for field in ("client_address", "user_agent"):
        assert isinstance(record[field], bytes)
        assert getattr(CONTEXT, field).encode() not in record[field]
    assert record["page"] == "unsubscribe" and record["language"] == "en"
    assert record["captured"] == list(CONTEXT.captured) and record["asserted"] == []


def test_it_opens_with_the_key_from_the_event_or_from_a_journal_payload() -> None:
    record = seal_context(CONTEXT, "sub-1", KEY)
    shown = open_context(record, "sub-1", KEY)
    assert shown is not None
    assert shown["client_address"] == "203.0.113.0/24"
    assert shown["user_agent"] == CONTEXT.user_agent
    assert shown["unreadable"] == []
    as_payload = {k: base64.b64encode(v).decode() if isinstance(v, bytes) else v
                  for k, v in record.items()}  # fmt: skip
    assert open_context(as_payload, "sub-1", KEY) == shown


def test_without_the_key_or_under_another_subject_it_reads_as_unreadable() -> None:
    record = seal_context(CONTEXT, "sub-1", KEY)
    for key, subject in ((None, "sub-1"), (os.urandom(32), "sub-1"), (KEY, "sub-2")):
        shown = open_context(record, subject, key)
        assert shown is not None
        assert shown["client_address"] is None and shown["user_agent"] is None
        assert shown["unreadable"] == ["client_address", "user_agent"]
        assert shown["page"] == "unsubscribe"


def test_an_erased_subject_without_a_key_keeps_nothing_personal() -> None:
    record = seal_context(CONTEXT, "sub-1", None)
    assert record["client_address"] is None and record["user_agent"] is None
    assert open_context(record, "sub-1", None) == {
        **open_context(record, "sub-1", KEY),  # type: ignore[dict-item]
        "unreadable": [],
    }
    assert open_context(None, "sub-1", KEY) is None
