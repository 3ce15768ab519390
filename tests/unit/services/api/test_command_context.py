"""An API caller's `context`: recorded as asserted on the four event types that carry one,
every field checked with a 422 naming it."""

from __future__ import annotations

from typing import Any

import pytest

from schemas import events as ev
from schemas.events import Context
from services.api import commands as c
from services.api.body_schemas import body_schema
from services.http.body import Fields
from services.http.problems import ProblemError
from tests.unit.event_log import CATALOGUE, NOW

CTX = c.Context("crm:42", NOW, CATALOGUE)
SENT = {
    "client_address": "2001:DB8:1:0::/48",
    "user_agent": "Mozilla/5.0",
    "page": "signup",
    "page_version": "2026-02",
    "language": "fi",
    "one_click": False,
}
ASSERTED = Context(
    client_address="2001:db8:1::/48",
    user_agent="Mozilla/5.0",
    page="signup",
    page_version="2026-02",
    language="fi",
    one_click=False,
    asserted=("client_address", "user_agent", "page", "page_version", "language", "one_click"),
)


@pytest.mark.parametrize(
    ("builder", "body", "types"),
    [
        (c.grant_consent, {"purpose": "newsletter"}, [ev.CONSENT_GRANTED]),
        (
            c.grant_consent,
            {"purpose": "newsletter", "lift_objection": True},
            [ev.DIRECT_MARKETING_OBJECTION_LIFTED, ev.CONSENT_GRANTED],
        ),
        (c.withdraw_consent, {}, [ev.CONSENT_WITHDRAWN]),
        (c.object_, {"kind": "direct_marketing"}, [ev.DIRECT_MARKETING_OBJECTED]),
        (
            c.lift_objection,
            {"kind": "direct_marketing", "evidence": "asked in the shop"},
            [ev.DIRECT_MARKETING_OBJECTION_LIFTED],
        ),
    ],
)
def test_a_sent_context_is_recorded_as_asserted(
    builder: c.Builder, body: dict[str, Any], types: list[str]
) -> None:
    events = builder(Fields({**body, "context": SENT}), CTX)
    assert [e.type for e in events] == types
    assert all(e.data["context"] == ASSERTED for e in events)
    assert all(e.type in ev.CONTEXT_EVENT_TYPES for e in events)
    without = builder(Fields(body), CTX)
    assert all("context" not in e.data for e in without)


def test_only_the_fields_sent_are_asserted_and_nothing_is_captured() -> None:
    (event,) = c.withdraw_consent(Fields({"context": {"language": "sv"}}), CTX)
    assert event.data["context"] == Context(language="sv", asserted=("language",))


@pytest.mark.parametrize(
    ("context", "field", "words"),
    [
        ({"client_address": "203.0.113.7"}, "context.client_address", "full client address"),
        ({"client_address": "203.0.113.0/25"}, "context.client_address", "/25 network"),
        ({"client_address": "x" * 10_000}, "context.client_address", "10000 characters"),
        ({"client_address": 7}, "context.client_address", "must be a string"),
        ({"user_agent": "a" * 257}, "context.user_agent", "257 characters"),
        ({"user_agent": "a\x00b"}, "context.user_agent", "U+0000"),
        ({"page": "Sign up"}, "context.page", "lowercase"),
        ({"page_version": "v" * 65}, "context.page_version", "1-64"),
        ({"language": "de"}, "context.language", "not accepted"),
        ({"one_click": "yes"}, "context.one_click", "true or false"),
        ({"referrer": "x"}, "context.referrer", "not a known field"),
    ],
)
def test_a_bad_context_field_is_a_422_naming_it(
    context: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(ProblemError) as caught:
        c.grant_consent(Fields({"purpose": "newsletter", "context": context}), CTX)
    assert caught.value.status == 422
    (error,) = caught.value.errors
    assert error["field"] == field and words in error["detail"]


def test_a_processing_objection_takes_no_context() -> None:
    body = {"kind": "processing", "purpose": "profiling", "context": {"language": "en"}}
    with pytest.raises(ProblemError) as caught:
        c.object_(Fields(body), CTX)
    assert "context" in {e["field"] for e in caught.value.errors}


@pytest.mark.parametrize(
    "builder", [c.grant_consent, c.withdraw_consent, c.object_, c.lift_objection]
)
def test_the_body_schema_documents_the_context(builder: c.Builder) -> None:
    schema = body_schema(builder, CATALOGUE)["properties"]["context"]
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == set(ev.CONTEXT_FIELDS)
    assert schema["properties"]["language"]["enum"] == ["fi", "sv", "en"]


def test_commands_without_a_context_event_do_not_document_one() -> None:
    assert "context" not in body_schema(c.restrict, CATALOGUE)["properties"]
