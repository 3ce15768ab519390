"""The fields of a webhook subscription an administrator may set, checked alike for the API
(POST and PATCH /v1/webhooks) and the CLI (`consent-ledger webhooks`): every problem named by
its field, the URL by services/rules/webhook_urls.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from schemas.event_limits import unstorable
from schemas.events import EVENT_TYPES, PURPOSE_EVENTS
from services.rules.webhook_urls import check_url

MAX_DESCRIPTION: Final = 200
CREATE_FIELDS: Final = ("url", "events", "description", "include_identifiers")
UPDATE_FIELDS: Final = ("url", "events", "description", "enabled")
ROTATE_FIELDS: Final = ("retire_previous",)
#: when the secrets a rotation replaces stop signing: after the overlap (default), or now (the
#: secret leaked)
RETIRE_PREVIOUS: Final = ("after_a_day", "now")
#: what a subscription may name: every event about a subject; the purpose catalogue's events
#: (keyed purpose/<id>) are about no subject, and a delivery would present the key as one
WEBHOOK_EVENT_TYPES: Final = tuple(t for t in EVENT_TYPES if t not in PURPOSE_EVENTS)


@dataclass(frozen=True, slots=True)
class FieldProblem:
    field: str
    detail: str
    accepted: tuple[str, ...] | None = None


def _events(value: Any) -> tuple[list[str] | None, FieldProblem | None]:
    if not isinstance(value, list) or not value or len(value) > len(WEBHOOK_EVENT_TYPES):
        detail = f"must be a list of 1-{len(WEBHOOK_EVENT_TYPES)} event types"
        return None, FieldProblem("events", detail, WEBHOOK_EVENT_TYPES)
    for i, v in enumerate(value):
        if isinstance(v, str) and v in PURPOSE_EVENTS:
            detail = (
                f"{v} is an event of the purpose catalogue, not about a subject: no webhook"
                " delivers it (read GET /v1/purposes/{id}/history)"
            )
            return None, FieldProblem(f"events[{i}]", detail, WEBHOOK_EVENT_TYPES)
    wrong = [v for v in value if not isinstance(v, str) or v not in WEBHOOK_EVENT_TYPES]
    if wrong:
        shown = ", ".join(repr(v)[:40] for v in wrong[:5])
        return None, FieldProblem("events", f"{shown} not an event type", WEBHOOK_EVENT_TYPES)
    return list(dict.fromkeys(value)), None


def _description(value: Any) -> tuple[str | None, FieldProblem | None]:
    if value is None:
        return None, None
    if not isinstance(value, str) or len(value) > MAX_DESCRIPTION:
        return None, FieldProblem("description", f"must be text of at most {MAX_DESCRIPTION}")
    if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in value):
        return None, FieldProblem("description", "must not contain control characters")
    if (problem := unstorable(value)) is not None:
        return None, FieldProblem("description", problem)
    return value.strip() or None, None


def check_fields(
    body: Mapping[str, Any],
    *,
    creating: bool,
    allow_loopback: bool,
    allow_private: bool,
) -> tuple[dict[str, Any], list[FieldProblem]]:
    """The values to store (url canonical, events as `event_types`), and every problem.
    Creating needs url and events; an update sets only the fields it gives."""
    known = CREATE_FIELDS if creating else UPDATE_FIELDS
    problems = [
        FieldProblem(str(name)[:64], "is not a field of a webhook", known)
        for name in body
        if name not in known
    ]
    values: dict[str, Any] = {}
    for name in ("url", "events"):
        if creating and body.get(name) is None:
            problems.append(FieldProblem(name, "is required"))
    if body.get("url") is not None:
        url = body["url"]
        if not isinstance(url, str):
            problems.append(FieldProblem("url", "must be a string"))
        else:
            try:
                values["url"] = check_url(
                    url, allow_loopback_http=allow_loopback, allow_private=allow_private
                )
            except ValueError as exc:
                problems.append(FieldProblem("url", str(exc)))
    elif "url" in body and not creating:
        problems.append(FieldProblem("url", "must be a URL, not null"))
    if body.get("events") is not None or ("events" in body and not creating):
        events, problem = _events(body["events"])
        if problem:
            problems.append(problem)
        else:
            values["event_types"] = events
    if "description" in body:
        description, problem = _description(body["description"])
        if problem:
            problems.append(problem)
        else:
            values["description"] = description
    for flag in ("include_identifiers", "enabled"):
        if flag in body and flag in known:
            if isinstance(body[flag], bool):
                values[flag] = body[flag]
            elif body[flag] is not None or not creating:
                problems.append(FieldProblem(flag, "must be true or false"))
    if creating:
        values.setdefault("include_identifiers", False)
        values.setdefault("description", None)
    return values, problems


def change_problems(
    values: Mapping[str, Any], *, url: str, include_identifiers: bool
) -> list[FieldProblem]:
    """What a checked update may not do to the stored subscription: move one that carries
    personal data (include_identifiers) to another URL, which would disclose that data to a
    new recipient behind the decision that subscribed the first one."""
    if include_identifiers and "url" in values and values["url"] != url:
        detail = (
            "cannot change for a subscription with include_identifiers (a new recipient of"
            " personal data): subscribe the new URL anew and delete this one"
        )
        return [FieldProblem("url", detail)]
    return []


def check_rotation(body: Mapping[str, Any]) -> tuple[bool, list[FieldProblem]]:
    """Whether a rotation retires the previous secrets now (not after a day), and every
    problem of its body."""
    problems = [
        FieldProblem(str(name)[:64], "is not a field of a rotation", ROTATE_FIELDS)
        for name in body
        if name not in ROTATE_FIELDS
    ]
    retire = body.get("retire_previous", RETIRE_PREVIOUS[0])
    if retire not in RETIRE_PREVIOUS:
        problems.append(FieldProblem("retire_previous", "must be one of", RETIRE_PREVIOUS))
    return retire == "now", problems
