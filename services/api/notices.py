"""Privacy notices: publish a version (POST /v1/notices), list them (GET /v1/notices), and list
who must be asked again after a material change (GET /v1/reconsent).

A version is published once. POST is idempotent by version: the same content again answers
200 with the stored notice, other content 409. The event id is derived from the content, so
retries of one request put one event in the journal, and when two different bodies race, the
first in log order (one version, one key, one partition) is the one kept; the API waits for
the projection to say which before it answers 201.
The same concept as projections/notices.py, on the HTTP side.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlencode, urlsplit

import asyncpg
from starlette.requests import Request
from starlette.responses import JSONResponse

from projections import notices, subject_state
from projections.outdating import Notice, Notices, notice_from_event
from projections.state import Fact, FactKey
from schemas import events as ev
from schemas.events import Event, notice_key, rfc3339
from services.api import openapi_responses as answers
from services.api.commands import Common, Context
from services.api.projector_status import require_fresh
from services.http.app_state import ledger_of
from services.http.appending import append_request
from services.http.body import Fields, query_fields, read_json_object
from services.http.openapi_parts import MIN_TOKEN, problem_answer, query_param, request_body
from services.http.problems import ProblemError, field_error, unavailable
from services.http.subjects import wait_for_token
from services.http.whole_numbers import whole_number_field
from services.ledger.errors import BrokerUnavailable
from services.ledger.tokens import encode_token
from services.rules.catalogue import Catalogue, Purpose
from services.rules.decisions import decide
from services.telemetry import api_metrics

VERSION_RE: Final = re.compile(r"[A-Za-z0-9._:-]{1,64}")
SHA256_RE: Final = re.compile(r"[0-9a-fA-F]{64}")
#: a BCP 47 language tag, loosely: en, fi, sv-FI, zh-Hant-TW
LANGUAGE_RE: Final = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8}){0,4}")
MAX_URL: Final = 2000
#: namespace of the content-derived event ids of NoticePublished
NOTICE_NAMESPACE: Final = uuid.UUID("6f1d3c52-8a4e-4a43-9a49-2b7cf3c1e0a7")
DEFAULT_LIMIT: Final = 1000
MAX_LIMIT: Final = 10000
RECONSENT_PATH: Final = "/v1/reconsent"


def build_notice(f: Fields, ctx: Context) -> Event:
    """The NoticePublished event of a POST body (pure); every bad field named at once."""
    common = Common(f, ctx)
    version = f.raw("version", required=True)
    if version is not None and not (
        isinstance(version, str) and len(version) <= 64 and VERSION_RE.fullmatch(version)
    ):
        f.error("version", "must be 1-64 characters from letters, digits and . _ : -")
        version = None
    effective_from = f.instant("effective_from", required=True)
    digest = f.raw("text_sha256", required=True)
    if digest is not None and not (
        isinstance(digest, str) and len(digest) == 64 and SHA256_RE.fullmatch(digest)
    ):
        f.error("text_sha256", "must be the SHA-256 of the notice text as 64 hex digits")
        digest = None
    url = f.text("url", required=True, max_len=MAX_URL)
    if url is not None and not _is_url(url):
        f.error("url", "must be an http(s) URL such as https://example.com/privacy/2026-01")
        url = None
    material = f.raw("material", required=True)
    if material is not None and not isinstance(material, bool):
        f.error("material", "must be true or false")
    purposes = f.choices("purposes", ctx.catalogue.ids)
    language = f.raw("language")
    if language is not None and not (
        isinstance(language, str) and len(language) <= 35 and LANGUAGE_RE.fullmatch(language)
    ):
        f.error("language", "must be a BCP 47 language tag such as fi, en or sv-FI")
    f.finish()
    assert isinstance(version, str) and effective_from is not None
    assert isinstance(digest, str) and url is not None and isinstance(material, bool)
    data = {
        "version": version,
        "effective_from": effective_from,
        "text_sha256": digest.lower(),
        "url": url,
        "material": material,
        "purposes": purposes,
        "language": language,
    }
    event = common.event(ev.NOTICE_PUBLISHED, data, version)
    content = notice_from_event(event, (0, 0))
    assert content is not None
    return replace(event, subject_id=notice_key(version), event_id=_content_id(content.content()))


def _is_url(text: str) -> bool:
    parts = urlsplit(text)
    return parts.scheme in ("http", "https") and bool(parts.netloc) and not re.search(r"\s", text)


def _content_id(content: dict[str, Any]) -> uuid.UUID:
    return uuid.uuid5(NOTICE_NAMESPACE, json.dumps(content, sort_keys=True))


def conflicts(stored: Notice, asked: Notice) -> list[str]:
    """The fields in which a request differs from the version already published."""
    mine, theirs = asked.content(), stored.content()
    return [name for name in mine if mine[name] != theirs[name]]


def _settled(stored: Notice, asked: Notice, *, created: bool) -> JSONResponse:
    differing = conflicts(stored, asked)
    if differing:
        raise ProblemError(
            409,
            "Notice version exists",
            f"version {stored.version!r} is already published with other content; publish"
            " the new text under a new version",
            errors=[field_error(name, "differs from the published version") for name in differing],
            kind="notice-version-exists",
        )
    body = {
        "type": ev.NOTICE_PUBLISHED,
        **stored.as_json(),
        "token": encode_token(stored.position[0], stored.position[1] + 1),
    }
    headers = {} if created else {"Idempotent-Replayed": "true"}
    return JSONResponse(body, 201 if created else 200, headers=headers)


async def publish(request: Request) -> JSONResponse:
    """POST /v1/notices."""
    ledger = ledger_of(request)
    body = await read_json_object(request)
    now = datetime.now(UTC)
    event = build_notice(Fields(body), Context("notice", now, ledger.catalogue))
    asked = notice_from_event(event, (0, 0))
    assert asked is not None
    stored = await notices.get(ledger.pool, asked.version)
    if stored is not None:
        answer = _settled(stored, asked, created=False)  # 409 when the content differs
        api_metrics.count_commands([event], replayed=True)
        return answer
    try:
        # no Idempotency-Key: the content-derived event id makes a retry the same event
        appended = await append_request(
            ledger, [event], key=None, digest=b"", subject_id=event.subject_id
        )
    except BrokerUnavailable:
        raise unavailable(
            "the event log did not acknowledge in time; nothing is confirmed: retry", 2
        ) from None
    [(partition, offset)] = appended.positions
    wait_s = ledger.settings.read_wait_ms / 1000
    if not await ledger.progress.wait_for(partition, offset + 1, wait_s):
        raise unavailable(
            "the notice is in the log but not yet projected; send the same request again to"
            " learn whether this version was kept",
            1,
        )
    stored = await notices.get(ledger.pool, asked.version)
    assert stored is not None  # projected: the version's first event is in the table
    return _settled(stored, asked, created=stored.event_id == event.event_id)


async def list_notices(request: Request) -> JSONResponse:
    """GET /v1/notices: every published version, by effective_from."""
    ledger = ledger_of(request)
    f = query_fields(request)
    await wait_for_token(ledger, f)
    f.finish()
    found = await notices.all_notices(ledger.pool)
    return JSONResponse({"notices": [n.as_json() for n in found]})


async def find_outdated(
    conn: asyncpg.Pool | asyncpg.Connection,
    purpose: Purpose,
    published: Notices,
    now: datetime,
    after: str,
    limit: int,
) -> tuple[list[dict[str, Any]], bool]:
    """Up to `limit` subjects after `after` whose decision for the purpose says
    `consent_outdated` on at least one channel, and whether more follow. Candidates come from
    the grants' index; the decision rules (objections, restrictions, later withdrawals) then
    keep only those who may be asked again."""
    cutoff = published.cutoff(purpose.id, now)
    if cutoff is None:
        return [], False
    found: list[dict[str, Any]] = []
    cursor = after
    while True:
        candidates = await notices.granted_before(conn, purpose.id, cutoff, cursor, limit + 1)
        states = await subject_state.facts_of(conn, candidates)
        for subject_id in candidates:
            entry = outdated_entry(subject_id, states[subject_id], purpose, published, now)
            if entry is not None:
                found.append(entry)
                if len(found) > limit:
                    return found[:limit], True
        if len(candidates) <= limit:
            return found, False
        cursor = candidates[-1]


def outdated_entry(
    subject_id: str,
    state: dict[FactKey, Fact],
    purpose: Purpose,
    published: Notices,
    now: datetime,
) -> dict[str, Any] | None:
    """The subject's outdated channels and the grant behind each, or None if it has none."""
    channels: dict[str, Any] = {}
    for channel in purpose.channels:
        decision = decide(state, purpose, channel, now, published)
        grant = decision.decided_by
        if decision.reason == "consent_outdated" and grant is not None:
            channels[channel] = {
                "event_id": str(grant.event_id),
                "notice_version": grant.notice_version,
                "consented_at": rfc3339(grant.occurred_at),
            }
    return {"subject_id": subject_id, "channels": channels} if channels else None


def _reconsent_purpose(f: Fields, catalogue: Catalogue) -> Purpose | None:
    asking = [p.id for p in catalogue.purposes.values() if p.reconsent_on_material_change]
    pid = f.choice("purpose", catalogue.ids, required=True)
    purpose = catalogue.get(pid) if pid else None
    if purpose is not None and not purpose.reconsent_on_material_change:
        f.error("purpose", f"{pid!r} does not ask for re-consent after a notice change", asking)
        return None
    return purpose


def _after(f: Fields) -> str:
    raw = f.raw("after")
    if raw is None:
        return ""
    if not isinstance(raw, str) or ev.subject_id_problem(raw):
        f.error("after", "is not a cursor of this list; use the `next` link of a page")
        return ""
    return raw


async def reconsent(request: Request) -> JSONResponse:
    """GET /v1/reconsent?purpose=: who must be asked again, paged by subject id."""
    ledger = ledger_of(request)
    f = query_fields(request)
    purpose = _reconsent_purpose(f, ledger.catalogue)
    limit = whole_number_field(f, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    after = _after(f)
    await wait_for_token(ledger, f)
    f.finish()
    await require_fresh(ledger)  # sending systems ask from this list: fail closed when stale
    assert purpose is not None
    now = datetime.now(UTC)
    published = await notices.load(ledger.pool)
    found, more = await find_outdated(ledger.pool, purpose, published, now, after, limit)
    following = None
    if more:
        query = {"purpose": purpose.id, "limit": str(limit), "after": found[-1]["subject_id"]}
        following = f"{RECONSENT_PATH}?{urlencode(query)}"
    cutoff = published.cutoff(purpose.id, now)
    change = next(
        (
            n
            for n in reversed(published.material)
            if n.effective_from == cutoff and n.covers(purpose.id)
        ),
        None,
    )
    return JSONResponse(
        {
            "purpose": purpose.id,
            "notice": change.as_json() if change else None,
            "checked_at": rfc3339(now),
            "subjects": found,
            "next": following,
        }
    )


PUBLISH_OPERATION: Final[dict[str, Any]] = {
    "summary": "Publish a version of the privacy notice (idempotent by version)",
    "requestBody": request_body(
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["version", "effective_from", "text_sha256", "url", "material"],
            "properties": {
                "version": {"type": "string", "pattern": VERSION_RE.pattern},
                "effective_from": {"type": "string", "format": "date-time"},
                "text_sha256": {"type": "string", "pattern": SHA256_RE.pattern},
                "url": {"type": "string", "format": "uri"},
                "material": {"type": "boolean"},
                "purposes": {"type": "array", "items": {"type": "string"}},
                "language": {"type": "string"},
                "method": {"type": "string"},
                "source": {"type": "object"},
                "actor": {"type": "object"},
                "occurred_at": {"type": "string", "format": "date-time"},
            },
        }
    ),
    "responses": {
        "201": answers.NOTICE_PUBLISHED,
        "200": answers.NOTICE_REPLAYED,
        "409": problem_answer("problem"),
        "4XX": problem_answer("problem"),
        "503": problem_answer("problem"),
    },
}
LIST_OPERATION: Final[dict[str, Any]] = {
    "summary": "Every published notice version",
    "parameters": [MIN_TOKEN],
    "responses": {"200": answers.NOTICES, "4XX": problem_answer("problem")},
}
RECONSENT_OPERATION: Final[dict[str, Any]] = {
    "summary": "Subjects whose consent a material notice change outdated, paged",
    "parameters": [
        query_param("purpose", True),
        query_param("limit"),
        query_param("after"),
        MIN_TOKEN,
    ],
    "responses": {
        "200": answers.RECONSENT,
        "4XX": problem_answer("problem"),
        "503": problem_answer("problem"),
    },
}
