"""The fields of a webhook subscription: what creating needs, what an update may change, and
every problem named by its field."""

from __future__ import annotations

from typing import Any

import pytest

from services.rules.webhook_fields import check_fields

URL = "https://crm.example.com/hook"


def check(body: dict[str, Any], creating: bool = True) -> tuple[dict[str, Any], list[str]]:
    values, problems = check_fields(
        body, creating=creating, allow_loopback=False, allow_private=False
    )
    return values, [p.field for p in problems]


def test_a_subscription_with_defaults() -> None:
    values, problems = check({"url": URL, "events": ["SubjectErased", "SubjectErased"]})
    assert problems == []
    assert values == {
        "url": URL,
        "event_types": ["SubjectErased"],
        "include_identifiers": False,
        "description": None,
    }


def test_an_update_sets_only_what_it_gives() -> None:
    assert check({"enabled": False}, creating=False) == ({"enabled": False}, [])
    assert check({"description": None}, creating=False) == ({"description": None}, [])


@pytest.mark.parametrize(
    ("body", "creating", "fields"),
    [
        ({}, True, ["url", "events"]),
        ({"url": URL, "events": "SubjectErased"}, True, ["events"]),
        ({"url": URL, "events": ["X"] * 100}, True, ["events"]),
        ({"url": URL, "events": [1]}, True, ["events"]),
        ({"url": URL, "events": ["SubjectErased"], "enabled": True}, True, ["enabled"]),
        ({"url": URL, "events": ["SubjectErased"], "description": "a\x00b"}, True, ["description"]),
        ({"url": None}, False, ["url"]),
        ({"events": None}, False, ["events"]),
        ({"enabled": None}, False, ["enabled"]),
        ({"include_identifiers": True}, False, ["include_identifiers"]),
        ({"x" * 500: 1}, False, ["x" * 64]),
        # the purpose catalogue's events are about no subject: refused, named by position
        ({"url": URL, "events": ["SubjectErased", "PurposeDefined"]}, True, ["events[1]"]),
        ({"events": ["PurposeRetired"]}, False, ["events[0]"]),
    ],
)
def test_problems_name_their_fields(
    body: dict[str, Any], creating: bool, fields: list[str]
) -> None:
    assert sorted(check(body, creating)[1]) == sorted(fields)


def test_the_purpose_catalogues_events_are_no_webhook_event_types() -> None:
    _, problems = check_fields(
        {"url": URL, "events": ["PurposeRetired"]},
        creating=True,
        allow_loopback=False,
        allow_private=False,
    )
    [problem] = problems
    assert "not about a subject" in problem.detail
    assert problem.accepted is not None and "PurposeRetired" not in problem.accepted
    assert "SubjectErased" in problem.accepted
