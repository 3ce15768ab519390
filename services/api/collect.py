"""POST and GET /v1/collect/consents: a website's banner records and reads its visitor's
cookie choices with the site's publishable key, from one of the site's origins (checked
before this runs: services/api/site_guard.py); OPTIONS answers the CORS preflight.

Design: docs/developers/design/websites.md
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from schemas import events as ev
from schemas.context_values import page_version_problem
from schemas.events import BANNER, GPC, LANGUAGES, Actor, Event, Source
from services.api.site_guard import allowed_origin, origin_refused, preflight_headers, site_of
from services.bootstrap import Ledger
from services.http.app_state import ledger_of
from services.http.appending import append_request
from services.http.applied import applied
from services.http.body import Fields, read_json_object
from services.http.event_context import context_data, page_context
from services.http.openapi_parts import (
    BOOLEAN,
    PROBLEM,
    STRING,
    json_answer,
    obj,
    problem_answer,
    query_param,
    request_body,
)
from services.http.problems import field_error, invalid
from services.ledger import idempotency
from services.ledger.append import Appended
from services.ledger.partitioning import partition_for
from services.ledger.tokens import encode_token
from services.rules.decisions import decide
from services.rules.site_collection import (
    DEVICE_PREFIX,
    banner_choice,
    cut_page_url,
    gpc_withdrawals,
    page_url_problem,
    parse_choices,
)

PATH: Final = "/v1/collect/consents"
#: the channel every banner choice is recorded on
CHANNEL: Final = "web"
#: the page a banner's context names (schemas/events.py `Context.page`)
BANNER_PAGE: Final = "banner"
#: the route name in request digests
ROUTE: Final = "collect"
_UUID_FORM: Final = "must be a UUID such as 0b7e5f4c-1d2a-4f3b-9c8d-7e6f5a4b3c2d"


def _device_id(f: Fields, *, required: bool) -> str | None:
    """The banner's device id, a UUID (its canonical lowercase form); a new one if the
    request sends none and may (a POST)."""
    value = f.raw("device_id", required)
    if value is None:
        return None if required else str(uuid.uuid4())
    if not isinstance(value, str) or len(value) > 36:
        f.error("device_id", _UUID_FORM)
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        f.error("device_id", _UUID_FORM)
        return None


def _text(f: Fields, name: str, problem_of: Any, *args: Any) -> str | None:
    value = f.raw(name)
    if value is None:
        return None
    if not isinstance(value, str):
        f.error(name, f"must be a string, not {type(value).__name__}")
        return None
    if problem := problem_of(value, *args):
        f.error(name, problem)
        return None
    return value


def _event(
    type_: str,
    method: str,
    subject_id: str,
    purpose: str,
    now: datetime,
    common: dict[str, Any],
) -> Event:
    data: dict[str, Any]
    if type_ == ev.CONSENT_GRANTED:
        data = ev.grant_data(purpose, CHANNEL)
    else:
        data = {"purpose": purpose, "channel": CHANNEL, "reason": None}
    return Event(
        type=type_,
        event_id=uuid.uuid4(),
        subject_id=subject_id,
        occurred_at=now,
        recorded_at=now,
        source=Source(method, common["system"], common["collection_point"]),
        actor=Actor("subject"),
        notice_version=common["notice_version"],
        data={**data, **context_data(common["context"])},
    )


async def _request_key(ledger: Ledger, parts: list[Any], now: datetime) -> str:
    """The idempotency key of a banner's request: its parts and the repeat window it falls
    in, or the window before when that one already recorded the same request (so a repeat
    within the window replays whatever the window's boundary)."""
    window = ledger.settings.collect_repeat_window_s
    bucket = int(now.timestamp()) // window
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    earlier = f"{ROUTE}:{digest}:{bucket - 1}"
    hashed = idempotency.key_hash(ledger.secrets.blind_index_key, earlier)
    if await idempotency.is_claimed(ledger.pool, hashed):
        return earlier
    return f"{ROUTE}:{digest}:{bucket}"


def _answer(appended: Appended, device_id: str) -> JSONResponse:
    """201 with what was recorded (on a replay: what the first request recorded)."""
    events = appended.events
    partition, offset = appended.positions[-1]
    body = {
        "subject_id": events[-1].subject_id,
        "device_id": device_id,
        "choices": {e.data["purpose"]: e.type == ev.CONSENT_GRANTED for e in events},
        "token": encode_token(partition, offset + 1),
    }
    headers = {"Idempotent-Replayed": "true"} if appended.replayed else {}
    return JSONResponse(body, 201, headers=headers)


async def record_choices(request: Request) -> JSONResponse:
    """Record a banner's choices (and what GPC asks for); nothing at all if a field is wrong."""
    ledger = ledger_of(request)
    site = site_of(request)
    catalogue = ledger.catalogue
    origin = request.headers["origin"]
    body = await read_json_object(request)
    f = Fields(body)
    device_id = _device_id(f, required=False)
    chosen, problems = parse_choices(f.raw("choices", True), site.purposes, catalogue)
    for problem in problems:
        path = tuple(problem.field.split(".", 1))
        f.errors.append(field_error(problem.field, problem.detail, path=path))
    notice = f.text("notice_version", max_len=64, free_text=True)
    page_url = _text(f, "page_url", page_url_problem, origin)
    banner_version = _text(f, "banner_version", page_version_problem)
    language = f.choice("language", LANGUAGES)
    f.finish()
    gpc = request.headers.get("sec-gpc", "").strip() == "1"
    assert device_id is not None
    subject_id = DEVICE_PREFIX + device_id
    now = datetime.now(UTC)
    shown, latest = await _standing(ledger, site.purposes, subject_id, now)
    # GPC speaks only where the visitor has no choice standing: it never undoes a grant
    undecided = {pid for pid, choice in shown.items() if choice is None}
    by_gpc = gpc_withdrawals(chosen, site.purposes, catalogue, gpc=gpc, undecided=undecided)
    if not chosen and not by_gpc and not gpc:
        raise invalid([field_error("choices", "must choose at least one purpose")])
    if not by_gpc and all(shown.get(pid) is given for pid, given in chosen.items()):
        # what the request asks for stands already: a repeat, a retry after its answer was
        # lost, or GPC alone with every choice made; nothing new is recorded
        token = encode_token(latest[0], latest[1] + 1) if latest[0] >= 0 else None
        body = {"subject_id": subject_id, "device_id": device_id, "choices": chosen}
        return JSONResponse({**body, "token": token}, 201, headers={"Idempotent-Replayed": "true"})
    kept_url = cut_page_url(page_url) if page_url else None
    common = {
        "system": f"site:{site.site_id}",
        "collection_point": kept_url or origin,
        "notice_version": notice,
        "context": page_context(
            request, page=BANNER_PAGE, page_version=banner_version, language=language
        ),
    }
    events = [
        _event(
            ev.CONSENT_GRANTED if given else ev.CONSENT_WITHDRAWN,
            BANNER,
            subject_id,
            pid,
            now,
            common,
        )
        for pid, given in chosen.items()
    ]
    events += [_event(ev.CONSENT_WITHDRAWN, GPC, subject_id, pid, now, common) for pid in by_gpc]
    # the device's latest recorded event is part of the key: two copies of one request sent
    # at once are one, the same request after another one (A, B, then A again) is new
    parts = [
        site.site_id,
        device_id,
        chosen,
        notice,
        kept_url,
        banner_version,
        language,
        gpc,
        list(latest),
    ]
    key = await _request_key(ledger, parts, now)
    digest = idempotency.request_digest(ROUTE, subject_id, {"parts": parts})
    appended = await append_request(ledger, events, key=key, digest=digest, subject_id=subject_id)
    # true when it answers: the next read (the banner's GET, a decision) sees it
    await applied(ledger, appended.positions[-1])
    return _answer(appended, device_id)


async def _standing(
    ledger: Ledger, purposes: Iterable[str], subject_id: str, now: datetime
) -> tuple[dict[str, bool | None], tuple[int, int]]:
    """What a banner would show for each purpose (as GET answers it), and the position of the
    device's latest fact ((-1, -1): none)."""
    partition = partition_for(subject_id, ledger.partitions)
    facts, _, projected = await ledger.states.get((subject_id, partition))
    notices = await ledger.notices.covering(projected)
    shown: dict[str, bool | None] = {}
    for pid in purposes:
        purpose = ledger.catalogue.get(pid)
        decision = decide(facts, purpose, CHANNEL, now, notices) if purpose else None
        shown[pid] = banner_choice(decision) if decision else None
    latest = max((f.position for f in facts.values()), default=(-1, -1))
    return shown, latest


async def show_choices(request: Request) -> JSONResponse:
    """What the visitor chose for each purpose the site collects: true, false, or null where
    the banner should ask (never asked, expired, or outdated by a new privacy notice)."""
    ledger = ledger_of(request)
    site = site_of(request)
    f = Fields(dict(request.query_params))
    device_id = _device_id(f, required=True)
    f.finish()
    assert device_id is not None
    subject_id = DEVICE_PREFIX + device_id
    choices, _ = await _standing(ledger, site.purposes, subject_id, datetime.now(UTC))
    return JSONResponse({"subject_id": subject_id, "device_id": device_id, "choices": choices})


async def preflight(request: Request) -> Response:
    """OPTIONS: the CORS preflight of a banner's request, answered for a registered origin
    only (a preflight carries no key); any other origin gets no CORS headers."""
    origin = allowed_origin(request)
    if origin is None:
        raise origin_refused("this origin is not one of a registered site's origins")
    return Response(status_code=204, headers=preflight_headers(origin))


_DEVICE: Final = {"type": "string", "format": "uuid"}
_CHOICES: Final = {"type": "object", "additionalProperties": BOOLEAN}
_ORIGIN: Final = {
    "name": "Origin",
    "in": "header",
    "required": True,
    "schema": STRING,
    "description": "one of the site's registered origins (a browser sends it)",
}
_REFUSED: Final = {
    "401": problem_answer("the site key is missing, not valid or revoked"),
    "403": problem_answer("no Origin, or an origin the site does not list"),
    "429": problem_answer("over a collection rate limit; see Retry-After"),
    "4XX": PROBLEM,
    "503": problem_answer("the log did not acknowledge; retry the same request"),
}

POST_OPERATION: Final[dict[str, Any]] = {
    "summary": "Record a website visitor's cookie choices (site key, from the site's origin)",
    "description": "Each choice is a grant or a withdrawal (method `banner`) on channel `web`"
    " for `device:<device_id>`; with `Sec-GPC: 1`, each direct-marketing purpose the site"
    " collects and the request does not choose is withdrawn (method `gpc`). The same request"
    " again within LEDGER_COLLECT_REPEAT_WINDOW_S records nothing new.",
    "parameters": [
        _ORIGIN,
        {"name": "Sec-GPC", "in": "header", "schema": {"type": "string", "enum": ["1"]}},
    ],
    "requestBody": request_body(
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["choices"],
            "properties": {
                "device_id": _DEVICE,
                "choices": _CHOICES,
                "notice_version": STRING,
                "page_url": STRING,
                "banner_version": STRING,
                "language": {"type": "string", "enum": list(LANGUAGES)},
            },
        }
    ),
    "responses": {
        "201": json_answer(
            "recorded and acknowledged (Idempotent-Replayed: true on a repeat)",
            obj(
                {
                    "subject_id": STRING,
                    "device_id": _DEVICE,
                    "choices": _CHOICES,
                    "token": STRING,
                }
            ),
        ),
        **_REFUSED,
    },
}
GET_OPERATION: Final[dict[str, Any]] = {
    "summary": "What a website visitor chose (site key, from the site's origin)",
    "parameters": [_ORIGIN, query_param("device_id", True, _DEVICE)],
    "responses": {
        "200": json_answer(
            "the visitor's choice for each purpose the site collects; null: ask",
            obj(
                {
                    "subject_id": STRING,
                    "device_id": _DEVICE,
                    "choices": {
                        "type": "object",
                        "additionalProperties": {"type": ["boolean", "null"]},
                    },
                }
            ),
        ),
        **_REFUSED,
    },
}
PREFLIGHT_OPERATION: Final[dict[str, Any]] = {
    "summary": "CORS preflight of a banner's request",
    "parameters": [_ORIGIN],
    "responses": {
        "204": {"description": "the origin is a registered site's: the CORS headers"},
        "403": problem_answer("the origin is no registered site's: no CORS headers"),
        "503": problem_answer("the sites could not be reloaded from the database"),
    },
}
