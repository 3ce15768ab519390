"""The body of POST /v1/decisions/batch, read strictly: one 422 names every bad field.

Subject ids are checked one by one (the first few bad ones are named with their JSON
pointer); e-mail addresses only have to be strings, since one that does not normalise is
answered `invalid_address` rather than failing the whole list. Exact duplicates are dropped,
keeping the first occurrence, so each distinct recipient is answered once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

from schemas.events import BY_IDENTIFIER, MAX_SUBJECT_ID, SUBJECT_ID_RE, subject_id_problem
from services.http.body import Fields
from services.http.problems import field_error
from services.rules.batch import MAX_RECIPIENTS
from services.rules.catalogue import Catalogue, Purpose

#: 100,000 addresses of up to 160 characters; the other routes keep 64 KiB
MAX_BODY: Final = 16 * 1024 * 1024
MAX_TOKENS: Final = 100
#: bad list entries named one by one in a problem; the rest are counted
LISTED: Final = 10
RECIPIENT_FIELDS: Final = ("subjects", "emails")


@dataclass(frozen=True, slots=True)
class BatchRequest:
    purpose: Purpose
    channel: str
    campaign_id: str | None
    #: "subjects" or "emails"
    kind: str
    #: distinct, in the order given
    recipients: list[str]
    min_tokens: list[str]


_SUBJECT_IDS_RE: Final = re.compile(rf"{SUBJECT_ID_RE.pattern}(?:\n{SUBJECT_ID_RE.pattern})*")


def all_subject_ids(values: list[Any]) -> bool:
    """`all(map(is_subject_id, values))` as one regex over the joined list (100k ids: ~10 ms,
    not ~100 ms); no id may hold the line break that joins them."""
    try:
        joined = "\n".join(values)
    except TypeError:
        return False
    return (
        len(joined) <= len(values) * (MAX_SUBJECT_ID + 1)
        and joined.count("\n") == len(values) - 1
        and _SUBJECT_IDS_RE.fullmatch(joined) is not None
        and BY_IDENTIFIER not in values
    )


def is_subject_id(value: object) -> bool:
    """`subject_id_problem(value) is None`, at a fraction of the cost: the id pattern has no
    `@`, so nothing it matches looks like an e-mail address (a unit test holds them equal)."""
    return (
        isinstance(value, str)
        and len(value) <= MAX_SUBJECT_ID
        and bool(SUBJECT_ID_RE.fullmatch(value))
        and value != BY_IDENTIFIER
    )


def _bad_entries(f: Fields, name: str, bad: list[tuple[int, str]]) -> None:
    for index, detail in bad[:LISTED]:
        f.errors.append(field_error(f"{name}.{index}", detail, path=(name, str(index))))
    if len(bad) > LISTED:
        f.error(name, f"{len(bad)} entries are invalid; the first {LISTED} are listed")


def _recipients(f: Fields) -> tuple[str, list[str]] | None:
    given = [name for name in RECIPIENT_FIELDS if f.raw(name) is not None]
    if len(given) != 1:
        f.error(given[1] if given else "subjects", "give exactly one of subjects or emails")
        return None
    name = given[0]
    value = f.data[name]
    if not isinstance(value, list):
        f.error(name, "must be a list of strings")
        return None
    if not 1 <= len(value) <= MAX_RECIPIENTS:
        f.error(name, f"has {len(value)} entries; send 1-{MAX_RECIPIENTS} per call")
        return None
    bad: list[tuple[int, str | None]] = []
    if name == "subjects" and all_subject_ids(value):
        pass
    elif name == "subjects":
        bad = [
            (i, subject_id_problem(v) if isinstance(v, str) else "must be a string")
            for i, v in enumerate(value)
            if not is_subject_id(v)
        ]
    else:  # an address that does not normalise is denied, not refused (batch-checks.md)
        bad = [(i, "must be a string") for i, v in enumerate(value) if not isinstance(v, str)]
    if bad:
        _bad_entries(f, name, [(i, d or "is invalid") for i, d in bad])
        return None
    return name, list(dict.fromkeys(value))


def _min_tokens(f: Fields) -> list[str]:
    value = f.raw("min_tokens")
    if value is None:
        return []
    if (
        not isinstance(value, list)
        or len(value) > MAX_TOKENS
        or not all(isinstance(t, str) for t in value)
    ):
        f.error("min_tokens", f"must be a list of at most {MAX_TOKENS} tokens (strings)")
        return []
    return value


def parse_batch(body: dict[str, Any], catalogue: Catalogue) -> BatchRequest:
    """The request, or one 422 problem naming every bad field."""
    f = Fields(body)
    pid = f.choice("purpose", catalogue.ids, required=True)
    purpose = catalogue.get(pid) if pid else None
    channel = f.choice("channel", purpose.channels if purpose else (), required=True)
    campaign_id = f.text("campaign_id", max_len=200, free_text=True)
    recipients = _recipients(f)
    min_tokens = _min_tokens(f)
    f.finish()
    assert purpose is not None and channel is not None and recipients is not None
    kind, listed = recipients
    return BatchRequest(purpose, channel, campaign_id, kind, listed, min_tokens)
