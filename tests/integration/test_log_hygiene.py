"""No secret and no personal data in any log line: a whole scenario over the real servers, with
every logger at DEBUG, and every captured record scanned for the contact identifiers, keys and
link tokens the scenario used.

The API runs under uvicorn with the options `consent-ledger api` uses (api_server_options), and
the projector in the same process, so their records and uvicorn's all reach the capture. The
records of httpx and httpcore are left out: they are this test's HTTP client, which logs the
URLs it requests, query strings included; the ledger itself does not use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit

import httpx
import pytest
import uvicorn

from services.api.app import create_app
from services.cli.main import api_server_options
from services.config import Settings
from services.identity.secrets import new_key
from services.stack.embedded import free_port
from services.telemetry.logs import JsonFormatter
from tests.conftest import (
    ADMIN_HEADERS,
    TEST_ADMIN_KEY,
    TEST_SECRETS,
    make_settings,
    running_projector,
    wait_until,
)
from tests.integration.unsubscribe_support import ONE_CLICK
from tests.servers import Servers

pytestmark = pytest.mark.integration

CLIENT_LOGGERS = ("httpx", "httpcore")
NEWSLETTER = {"purpose": "newsletter", "channel": "email"}


@contextlib.asynccontextmanager
async def production_api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app under uvicorn as `consent-ledger api` runs it, on a free port."""
    port = free_port()
    options = {**api_server_options(settings), "host": "127.0.0.1", "port": port}
    server = uvicorn.Server(uvicorn.Config(create_app(settings), **options))
    task = asyncio.create_task(server.serve())

    async def started() -> bool:
        if task.done():
            task.result()
            raise AssertionError("the API stopped during start-up")
        return bool(server.started)

    try:
        await wait_until(started, 30, "the API to start")
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", timeout=30, headers=ADMIN_HEADERS
        ) as client:
            yield client
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


@pytest.fixture
def every_record(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> Iterator[pytest.LogCaptureFixture]:
    """caplog at DEBUG for the root and every logger there is, each one propagating."""
    caplog.set_level(logging.DEBUG)
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if isinstance(logger, logging.Logger):
            caplog.set_level(logging.DEBUG, logger=name)
            monkeypatch.setattr(logger, "propagate", True)
            monkeypatch.setattr(logger, "disabled", False)
    yield caplog


def record_text(record: logging.LogRecord) -> str:
    """All a handler could write from a record: the message, every attribute (extra fields,
    arguments), the exception's text and the JSON line the ledger writes."""
    parts = [record.getMessage(), repr(vars(record))]
    if record.exc_info:
        parts.append(logging.Formatter().formatException(record.exc_info))
    parts.append(JsonFormatter().format(record))
    return "\n".join(parts)


def forms_of(value: str) -> set[str]:
    """A value as it could appear: as given, lower- and upper-cased, URL-encoded."""
    out = set()
    for form in (value, value.lower(), value.upper()):
        out |= {form, quote(form, safe=""), quote_plus(form)}
    return out


def leaks(records: list[logging.LogRecord], forbidden: dict[str, str]) -> list[str]:
    """`what: logger: line` for every forbidden string found in a ledger record."""
    found = []
    for record in records:
        if record.name.split(".")[0] in CLIENT_LOGGERS:
            continue
        text = record_text(record)
        found += [
            f"{what}: {record.name}: {text[:300]}" for s, what in forbidden.items() if s in text
        ]
    return found


def secret_values() -> dict[str, str]:
    """Each configured secret, whole and (for key rings) each key without its id."""
    out = {}
    for var, value in TEST_SECRETS.items():
        out[value] = var
        for entry in value.split(","):
            out[entry.split(":", 1)[-1]] = var
    return out


def test_the_scan_finds_what_it_looks_for() -> None:
    email = "Ada.Probe+x@Example.com"
    planted = logging.makeLogRecord({"name": "services.x", "msg": "q=%s", "args": (quote(email),)})
    clean = logging.makeLogRecord({"name": "services.x", "msg": "nothing here"})
    client = logging.makeLogRecord({"name": "httpx", "msg": email})
    forbidden = dict.fromkeys(forms_of(email), "e-mail")
    assert len(leaks([planted, clean, client], forbidden)) == 1


async def _linked(api: httpx.AsyncClient, subject: str, kind: str, value: str) -> str:
    answer = await api.post(
        f"/v1/subjects/{subject}/identifiers", json={"type": kind, "value": value}
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["token"])


async def _scenario(
    api: httpx.AsyncClient, subject: str, email: str, phone: str, wrong: str
) -> Any:
    """Every route that takes a contact identifier or a link token, and some that fail."""
    await _linked(api, subject, "email", email)
    await _linked(api, subject, "phone", phone)
    granted = await api.post(f"/v1/subjects/{subject}/consents", json=NEWSLETTER)
    assert granted.status_code == 201, granted.text
    token = granted.json()["token"]
    by_email = await api.get(
        "/v1/decision", params={"email": email, **NEWSLETTER, "min_token": token}
    )
    assert by_email.json()["subject_id"] == subject and by_email.json()["allowed"]
    by_phone = await api.get(
        "/v1/subjects/by-identifier/consent", params={"phone": phone, "min_token": token}
    )
    assert by_phone.json()["subject_id"] == subject
    batch = await api.post(
        "/v1/decisions/batch",
        json={
            **NEWSLETTER,
            "emails": [email.upper(), f"other-{email}", "not an address"],
            "campaign_id": "hygiene-1",
            "min_tokens": [token],
        },
    )
    assert batch.json()["counts"]["allowed"] == 1, batch.text

    links = await api.post("/v1/unsubscribe-links", json={"email": email.lower(), **NEWSLETTER})
    assert links.status_code == 200, links.text
    unsubscribe = urlsplit(links.json()["url"]).path
    preferences = urlsplit(links.json()["preferences_url"]).path
    assert (await api.get(unsubscribe)).status_code == 200
    clicked = await api.post(unsubscribe, data=ONE_CLICK)
    assert clicked.status_code == 200, clicked.text
    assert (await api.get(preferences)).status_code == 200
    assert (await api.get(unsubscribe[:-4] + "AAAA")).status_code == 404
    assert (await api.get(preferences.replace("/p/", "/u/"))).status_code == 404

    receipt = await api.get(
        f"/v1/receipts/{granted.json()['event_id']}", params={"min_token": token}
    )
    assert receipt.status_code == 200, receipt.text
    export = await api.get("/v1/subjects/by-identifier/export", params={"email": email})
    assert export.status_code == 200 and export.json()["subject_id"] == subject
    history = await api.get(
        "/v1/subjects/by-identifier/history", params={"phone": phone, "format": "csv"}
    )
    assert history.status_code == 200

    bad_source = {**NEWSLETTER, "source": {"system": email, "collection_point": phone}}
    refused = await api.post(f"/v1/subjects/{subject}/consents", json=bad_source)
    assert refused.status_code == 422 and "source.system" in refused.text
    not_a_phone = await api.post(
        f"/v1/subjects/{subject}/identifiers", json={"type": "phone", "value": email}
    )
    assert not_a_phone.status_code == 422
    malformed = await api.post(
        f"/v1/subjects/{subject}/consents",
        content=b'{"purpose": "' + email.encode() + b'",',
        headers={"Content-Type": "application/json"},
    )
    assert malformed.status_code == 400
    in_path = await api.get(f"/v1/subjects/{quote(email)}/consent")
    assert in_path.status_code == 422
    not_an_email = await api.get("/v1/decision", params={"email": f"@@{email}", **NEWSLETTER})
    assert not_an_email.status_code == 422
    wrong_key = await api.get(
        "/v1/decision",
        params={"email": email, **NEWSLETTER},
        headers={"Authorization": f"Bearer {wrong}"},
    )
    assert wrong_key.status_code in (200, 401, 403)

    erased = await api.post(f"/v1/subjects/{subject}/erasure", json={"ground": "consent_withdrawn"})
    assert erased.status_code == 201, erased.text
    after = await api.get(
        "/v1/decision",
        params={"email": email, **NEWSLETTER, "min_token": erased.json()["token"]},
    )
    assert after.status_code == 200
    return unsubscribe.removeprefix("/u/"), preferences.removeprefix("/p/")


async def test_no_identifier_key_or_link_token_reaches_a_log_line(
    real_servers: Servers, every_record: pytest.LogCaptureFixture
) -> None:
    settings = await make_settings(real_servers, LEDGER_LOG_LEVEL="debug")
    subject = "hyg-" + uuid.uuid4().hex[:10]
    email = f"Ada.{uuid.uuid4().hex[:8]}+News@Example.com"
    phone = "+35840" + "".join(secrets.choice("0123456789") for _ in range(7))
    wrong = f"cl_wrong_{new_key()}"
    async with running_projector(settings), production_api(settings) as api:
        unsubscribe_token, preference_token = await _scenario(api, subject, email, phone, wrong)

    forbidden = {
        **dict.fromkeys(forms_of(email), "e-mail"),
        **dict.fromkeys(forms_of(f"other-{email}"), "e-mail"),
        **dict.fromkeys(forms_of(phone), "phone"),
        phone.removeprefix("+"): "phone",
        TEST_ADMIN_KEY: "admin API key",
        wrong: "wrong API key",
        **secret_values(),
        unsubscribe_token: "unsubscribe token",
        preference_token: "preference token",
    }
    records = every_record.records
    routes = {getattr(r, "fields", {}).get("route") for r in records}
    assert {"/v1/decision", "/u/{token}", "/p/{token}", "/v1/decisions/batch"} <= routes
    assert any(r.levelno == logging.DEBUG for r in records), "the capture is at DEBUG"
    assert leaks(records, forbidden) == []


def _start_api(env: dict[str, str], stderr: Path) -> subprocess.Popen[bytes]:
    with stderr.open("wb") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "services.cli.main", "api"],
            env={**os.environ, **env},
            stderr=err,
        )


def _tail(path: Path) -> str:
    return path.read_text()[-2000:]


@contextlib.asynccontextmanager
async def api_process(settings: Settings, stderr: Path) -> AsyncIterator[httpx.AsyncClient]:
    """`consent-ledger api` as its own process, its stderr in a file."""
    port = free_port()
    process = _start_api({**settings.as_environment(), "LEDGER_PORT": str(port)}, stderr)
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", timeout=30, headers=ADMIN_HEADERS
        ) as client:

            async def ready() -> bool:
                if process.poll() is not None:
                    raise AssertionError(f"the API exited: {_tail(stderr)}")
                try:
                    return (await client.get("/readyz")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_until(ready, 60, "`consent-ledger api` to be ready")
            yield client
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(process.wait, 30)


async def test_the_api_process_writes_json_lines_without_identifiers(
    real_servers: Servers, tmp_path: Path
) -> None:
    settings = await make_settings(real_servers, LEDGER_LOG_LEVEL="debug")
    email = f"Bo.{uuid.uuid4().hex[:8]}@Example.org"
    subject, trace = "hyg-" + uuid.uuid4().hex[:10], f"trace-{uuid.uuid4().hex}"
    stderr = tmp_path / "api.stderr"
    async with running_projector(settings), api_process(settings, stderr) as api:
        token = await _linked(api, subject, "email", email)
        decided = await api.get(
            "/v1/decision",
            params={"email": email, **NEWSLETTER, "min_token": token},
            headers={"X-Request-Id": trace},
        )
        assert decided.json()["subject_id"] == subject
        links = await api.post("/v1/unsubscribe-links", json={"email": email, **NEWSLETTER})
        unsubscribe = urlsplit(links.json()["url"]).path
        assert (await api.get(unsubscribe)).status_code == 200
        refused = await api.post(
            f"/v1/subjects/{subject}/consents", json={**NEWSLETTER, "source": {"system": email}}
        )
        assert refused.status_code == 422
    text = stderr.read_text()
    lines = [json.loads(line) for line in text.splitlines()]
    assert all({"timestamp", "level", "logger", "message"} <= set(line) for line in lines)
    assert any(line["logger"] == "uvicorn.error" for line in lines), "uvicorn's lines are JSON"
    [access] = [line for line in lines if line.get("request_id") == trace]
    assert (access["route"], access["status"], access["method"]) == ("/v1/decision", 200, "GET")
    forbidden = [*forms_of(email), unsubscribe.removeprefix("/u/"), TEST_ADMIN_KEY]
    assert [s for s in forbidden if s in text] == []
