"""Running the webhook receivers of docs/integrators/examples/ as a reader would, and signing
deliveries for them as the ledger does: shared by tests/unit/project/test_receiver_examples.py
and test_receiver_ledger_deliveries.py (the fixtures starting them: conftest.py)."""

from __future__ import annotations

import base64
import json
import os
import selectors
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from standardwebhooks.webhooks import Webhook

EXAMPLES = Path(__file__).resolve().parents[3] / "docs" / "integrators" / "examples"
RECEIVERS = ["receiver_stdlib.py", "receiver_standardwebhooks.py"]
OLD = "whsec_" + base64.b64encode(b"o" * 32).decode()
NEW = "whsec_" + base64.b64encode(b"n" * 32).decode()
START_DEADLINE_S = 30
#: the subscription the deliveries of these tests are for
SUBSCRIPTION = uuid.uuid4()


@dataclass(frozen=True)
class Receiver:
    url: str
    database: Path

    def rows(self, query: str, *args: object) -> list[tuple[Any, ...]]:
        with closing(sqlite3.connect(self.database)) as connection:
            return connection.execute(query, args).fetchall()

    def processed(self, webhook_id: str) -> int:
        query = "SELECT count(*) FROM processed_webhooks WHERE webhook_id = ?"
        return int(self.rows(query, webhook_id)[0][0])


def start(script: str, secrets: list[str], folder: Path) -> Iterator[Receiver]:
    """Run the example with a free port; its first line says where it listens."""
    database = folder / "hooks.sqlite3"
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLES / script), "--port", "0", "--db", str(database)],
        env={**os.environ, "LEDGER_WEBHOOK_SECRETS": " ".join(secrets)},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            ready = selector.select(timeout=START_DEADLINE_S)
        assert ready, f"{script} did not say where it listens within {START_DEADLINE_S} s"
        line = process.stdout.readline()
        assert line.startswith("listening on "), f"{script} printed {line!r}"
        yield Receiver(line.removeprefix("listening on ").strip().rstrip("/"), database)
    finally:
        process.terminate()
        process.wait(timeout=START_DEADLINE_S)
        if process.stdout is not None:
            process.stdout.close()


def event(kind: str, data: dict[str, Any], subject: str = "cust-4711") -> dict[str, Any]:
    return {
        "type": kind,
        "event_id": str(uuid.uuid4()),
        "subject_id": subject,
        "occurred_at": "2026-11-25T19:12:10.783981Z",
        "recorded_at": "2026-11-25T19:12:10.783981Z",
        "data": data,
    }


def body_of(payload: object) -> bytes:
    return httpx.Request("POST", "http://x", json=payload).read()


def signed(
    body: bytes,
    *,
    secrets: tuple[str, ...] = (NEW,),
    webhook_id: str | None = None,
    at: datetime | None = None,
) -> dict[str, str]:
    """The headers the ledger sends, each signature made by the standardwebhooks package."""
    webhook_id = webhook_id or ledger_webhook_id(body)
    at = at or datetime.now(UTC)
    signatures = " ".join(Webhook(secret).sign(webhook_id, at, body) for secret in secrets)
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signatures,
        "content-type": "application/json",
    }


def ledger_webhook_id(body: bytes) -> str:
    """The ledger's webhook-id, `{event_id}_{subscription_id}` (no '.': its signer refuses one,
    the signed content reserves it); a random event id for a body that names none."""
    try:
        event_id = json.loads(body)["event_id"]
    except (ValueError, TypeError, KeyError):
        event_id = str(uuid.uuid4())
    return f"{event_id}_{SUBSCRIPTION}"


def post(receiver: Receiver, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(receiver.url + "/", content=body, headers=headers, timeout=10)
