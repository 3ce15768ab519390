"""The `context` of the events a request records: captured from the request by a page, or
asserted by an API caller in the body; sealed under the subject's data key on the way to the
log (`seal_contexts`, which every append of a request passes through).

To give one more page a context: `page_context(request, page=..., page_version=...,
language=...)` and put it in the data of the events it records as `context`. To give one more
event type one: a new schema version with the `context` field (schemas/avro/), and its name in
`CONTEXT_EVENT_TYPES` (schemas/events.py).

Design: docs/developers/design/event-context.md
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Final

from starlette.requests import Request

from schemas.context_values import (
    CONTEXT_LANGUAGES,
    canonical_network,
    client_address_problem,
    cut_user_agent,
    page_problem,
    page_version_problem,
    truncated_network,
    user_agent_problem,
)
from schemas.events import CONTEXT_FIELDS, Context, Event
from services.http.body import Fields
from services.identity.context_sealing import has_personal_fields, seal_context
from services.identity.keystore import DataKeys, KeyShredded

#: the body field an API caller asserts a context in
CONTEXT: Final = "context"


def context_data(context: Context | None) -> dict[str, Context]:
    """`context` as a field of an event's data: absent when there is none, as it decodes."""
    return {CONTEXT: context} if context is not None else {}


def page_context(
    request: Request,
    *,
    page: str,
    page_version: str | None,
    language: str | None = "en",
    one_click: bool = False,
) -> Context:
    """What the ledger captures itself of a page's request: the client's network (its
    address truncated, services/http/rate_limit.py learns the same address from uvicorn, which
    honours X-Forwarded-For only from LEDGER_FORWARDED_ALLOW_IPS), the user agent cut to its
    limit, the page, its version and language, and whether it was a one-click POST."""
    host = request.client.host if request.client else ""
    values: dict[str, Any] = {
        "client_address": truncated_network(host),
        "user_agent": cut_user_agent(request.headers.get("user-agent")),
        "page": page,
        "page_version": page_version,
        "language": language,
        "one_click": one_click,
    }
    captured = tuple(name for name in CONTEXT_FIELDS if values[name] is not None)
    return Context(**values, captured=captured)


def asserted_context(f: Fields) -> Context | None:
    """The `context` an API caller sent, every field checked (a problem names
    `context.<field>`); None when it sent none. The ledger captures nothing of an API call: the
    caller's own address and user agent are not the subject's."""
    inner = f.object(CONTEXT)
    if inner is None:
        return None
    values: dict[str, Any] = {
        "client_address": _checked(inner, "client_address", client_address_problem),
        "user_agent": _checked(inner, "user_agent", user_agent_problem),
        "page": _checked(inner, "page", page_problem),
        "page_version": _checked(inner, "page_version", page_version_problem),
        "language": inner.choice("language", CONTEXT_LANGUAGES),
        "one_click": inner.flag("one_click"),
    }
    f.merge(inner)
    if values["client_address"] is not None:
        values["client_address"] = canonical_network(values["client_address"])
    sent = [name for name in CONTEXT_FIELDS if inner.data.get(name) is not None]
    return Context(**values, asserted=tuple(sent))


def _checked(f: Fields, name: str, problem_of: Any) -> str | None:
    """A string field held to `problem_of` (length first, then its form), else None."""
    value = f.raw(name)
    if value is None:
        return None
    if not isinstance(value, str):
        f.error(name, f"must be a string, not {type(value).__name__}")
        return None
    if problem := problem_of(value):
        f.error(name, problem)
        return None
    if "\x00" in value:
        f.error(name, "must not contain U+0000")
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        f.error(name, "must be valid Unicode (no lone surrogates)")
        return None
    return value


async def seal_contexts(data_keys: DataKeys, events: Sequence[Event]) -> list[Event]:
    """The events with each clear `Context` replaced by its sealed record; the subject's data
    key is fetched (or made) only when one holds a personal field."""
    contexts = [e.data.get(CONTEXT) for e in events]
    if not any(isinstance(c, Context) for c in contexts):
        return list(events)
    data_key: bytes | None = None
    personal = [e for e, c in zip(events, contexts, strict=True) if isinstance(c, Context)]
    if any(has_personal_fields(e.data[CONTEXT]) for e in personal):
        try:
            data_key = await data_keys.for_subject(personal[0].subject_id)
        except KeyShredded:
            data_key = None  # erased: the append refuses, and nothing personal is kept
    sealed = []
    for event, context in zip(events, contexts, strict=True):
        if isinstance(context, Context):
            record = seal_context(context, event.subject_id, data_key)
            event = dataclasses.replace(event, data={**event.data, CONTEXT: record})
        sealed.append(event)
    return sealed
