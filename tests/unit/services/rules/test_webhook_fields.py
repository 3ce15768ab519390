"""The fields of a webhook subscription: what creating needs, what an update may change, and
every problem named by its field."""

from __future__ import annotations

from typing import Any

import pytest

from services.rules.webhook_fields import change_problems, check_fields, check_rotation

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
        (
            {"url": URL, "events": ["SubjectErased"], "description": "a\ud800"},
            True,
            ["description"],
        ),
        ({"url": URL + "/\udc00", "events": ["SubjectErased"]}, True, ["url"]),
        ({"url": "https://\ud83d.example/"}, False, ["url"]),
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


@pytest.mark.parametrize(
    ("values", "include_identifiers", "refused"),
    [
        ({"url": "https://other.example/"}, True, True),
        ({"url": URL}, True, False),  # the same URL again changes nothing
        ({"url": "https://other.example/"}, False, False),
        ({"enabled": False, "events": ["SubjectErased"]}, True, False),
    ],
)
def test_a_subscription_with_identifiers_cannot_move_to_another_url(
    values: dict[str, Any], include_identifiers: bool, refused: bool
) -> None:
    problems = change_problems(values, url=URL, include_identifiers=include_identifiers)
    assert [p.field for p in problems] == (["url"] if refused else [])


@pytest.mark.parametrize(
    ("body", "now", "fields"),
    [
        ({}, False, []),
        ({"retire_previous": "after_a_day"}, False, []),
        ({"retire_previous": "now"}, True, []),
        ({"retire_previous": "NOW"}, False, ["retire_previous"]),
        ({"retire_previous": None}, False, ["retire_previous"]),
        ({"retire_previous": ["now"]}, False, ["retire_previous"]),
        ({"secret": "whsec_x"}, False, ["secret"]),
    ],
)
def test_a_rotation_retires_the_previous_secrets_now_only_when_asked(
    body: dict[str, Any], now: bool, fields: list[str]
) -> None:
    retire_now, problems = check_rotation(body)
    assert retire_now is now and [p.field for p in problems] == fields


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
