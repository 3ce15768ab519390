"""`consent-ledger up` as a user runs it: a subprocess on free ports, a scenario over HTTP,
Ctrl-C, and a second start that still knows everything recorded before."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest

from services.stack.embedded import free_port
from tests.conftest import ADMIN_HEADERS, TEST_ADMIN_KEY, make_settings, wait_until
from tests.e2e.running_up import Stack
from tests.integration.purpose_support import FILE_PURPOSES
from tests.integration.webhook_support import api_subscribe, receiving
from tests.servers import Servers

pytestmark = pytest.mark.e2e

SAMPLES = Path(__file__).resolve().parents[2] / "services" / "importing" / "samples"
#: unset for commands that must find a running `up` by themselves
SERVER_VARIABLES = ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")


async def command(client: httpx.AsyncClient, subject: str, path: str, body: dict[str, Any]) -> Any:
    response = await client.post(f"/v1/subjects/{subject}/{path}", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def session_database_url(data_dir: Path) -> str:
    """The DATABASE_URL a running `up` wrote for the commands run beside it."""
    session = (data_dir / "session.env").read_text().splitlines()
    [url] = [line.split("=", 1)[1] for line in session if line.startswith("DATABASE_URL=")]
    return url


async def test_up_serves_a_scenario_stops_cleanly_and_restarts_with_everything(
    stack: Stack,
) -> None:
    public_port = free_port()
    stack.env["LEDGER_PUBLIC_PORT"] = str(public_port)
    stack.env["LEDGER_WEBHOOK_ALLOW_LOOPBACK"] = "true"  # as `make up` sets it
    stack.start()
    await stack.ready()
    admin_key = stack.data_dir / "admin.key"
    assert admin_key.stat().st_mode & 0o777 == 0o600
    headers = stack.admin_headers()
    key = headers["Authorization"].removeprefix("Bearer ")
    banner = stack.log.read_text()
    assert f"  Admin key   {key}\n" in banner  # shown on the start that made it
    # the banner says what the embedded servers are: for development only
    assert "consent ledger is up (development only)" in banner
    assert "NO authentication: anyone on this machine can write" in banner
    password_file = stack.data_dir / "pg.password"
    assert f"password in {password_file}" in banner
    assert password_file.stat().st_mode & 0o777 == 0o600
    # the embedded PostgreSQL refuses a connection without the password
    database_url = session_database_url(stack.data_dir)
    assert urlsplit(database_url).password == password_file.read_text().strip()
    assert urlsplit(database_url).query == f"host={stack.data_dir / 'pg'}"
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(database_url.replace(password_file.read_text().strip(), ""))
    conn = await asyncpg.connect(database_url)
    await conn.close()
    # the public listener serves the pages' routes only
    assert f"  Public      http://127.0.0.1:{public_port}" in banner
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{public_port}", timeout=30, headers=headers
    ) as public:
        assert (await public.get("/healthz")).status_code == 200
        assert (await public.get("/v1/purposes")).status_code == 404
        assert (await public.get("/readyz")).status_code == 404
    async with httpx.AsyncClient(base_url=stack.url, timeout=30) as anonymous:
        assert (await anonymous.get("/v1/purposes")).status_code == 401
        assert (await anonymous.get("/readyz")).json() == {"status": "ready"}
    async with (
        receiving() as receiver,
        httpx.AsyncClient(base_url=stack.url, timeout=30, headers=headers) as client,
    ):
        purposes = (await client.get("/v1/purposes")).json()["purposes"]
        assert "newsletter" in [p["id"] for p in purposes]
        hook = await api_subscribe(client, receiver, ["ConsentGranted"])
        await command(client, "e2e-1", "identifiers", {"type": "email", "value": "e2e@example.com"})
        grant = await command(client, "e2e-1", "consents", {"purpose": "newsletter"})

        # `up` runs the webhook dispatcher: the grant reaches the subscribed receiver, signed
        async def delivered() -> bool:
            return grant["event_id"] in {r.payload["event_id"] for r in receiver.acknowledged}

        await wait_until(delivered, 60, "the dispatcher to deliver the grant")
        assert "e2e-1" in {p["subject_id"] for p in receiver.verified(hook["secret"])}
        assert (await client.delete(f"/v1/webhooks/{hook['id']}")).status_code == 204
        await command(client, "e2e-2", "consents", {"purpose": "marketing_partners"})
        objection = await command(client, "e2e-2", "objections", {"kind": "direct_marketing"})
        params = {"subject_id": "e2e-1", "purpose": "newsletter", "channel": "email"}
        first = await client.get("/v1/decision", params={**params, "min_token": grant["token"]})
        assert first.json()["reason"] == "consent_given"
        before = (
            await client.get("/v1/subjects/e2e-2/events", params={"min_token": objection["token"]})
        ).json()["events"]
        assert len(before) == 2
    assert stack.interrupt() == 0
    assert "consent-ledger: stopped" in stack.log.read_text()
    stack.assert_nothing_left_running()
    secrets_file = stack.data_dir / "secrets.toml"
    assert "(generated now; back it up" in stack.log.read_text()
    assert secrets_file.stat().st_mode & 0o777 == 0o600
    secrets = secrets_file.read_text()

    stack.start()
    await stack.ready()
    assert secrets_file.read_text() == secrets  # kept: the data keys stay usable
    assert stack.admin_headers() == headers  # kept too, and not shown again
    assert stack.log.read_text().count(key) == 1
    assert f"  Admin key   in {admin_key}" in stack.log.read_text()
    if "embedded Tansu" in stack.log.read_text():
        # the subjects' 4 events and the catalogue file's purposes the first start seeded
        restored = 4 + FILE_PURPOSES
        assert f"restored {restored} events to the empty broker from the journal" in (
            stack.log.read_text()
        )
    async with httpx.AsyncClient(base_url=stack.url, timeout=30, headers=headers) as client:
        after = (await client.get("/v1/subjects/e2e-2/events")).json()["events"]
        assert [e["event_id"] for e in after] == [e["event_id"] for e in before]
        decision = (await client.get("/v1/decision", params=params)).json()
        assert decision["reason"] == "consent_given"
        assert decision["evidence"] == [grant["event_id"]]
        by_email = {"email": "E2E@example.com", "purpose": "newsletter", "channel": "email"}
        found = (await client.get("/v1/decision", params=by_email)).json()
        assert (found["subject_id"], found["reason"]) == ("e2e-1", "consent_given")
        blocked = await client.get(
            "/v1/decision",
            params={"subject_id": "e2e-2", "purpose": "marketing_partners", "channel": "email"},
        )
        assert blocked.json()["reason"] == "objected_direct_marketing"
        # an operator command beside `up` finds its servers and secrets with no set-up
        imported = await asyncio.to_thread(
            subprocess.run,
            [
                sys.executable,
                "-m",
                "services.cli.main",
                "import",
                str(SAMPLES / "generic.csv"),
                "--purpose",
                "newsletter",
                "--channel",
                "email",
                "--rejects",
                str(stack.data_dir / "rejects.csv"),
            ],
            env={
                **{k: v for k, v in os.environ.items() if k not in SERVER_VARIABLES},
                "LEDGER_DATA_DIR": str(stack.data_dir),
            },
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert imported.returncode == 0, imported.stdout + imported.stderr
        assert "using the servers of the running `up`" in imported.stdout
        assert "ada@example.com" not in imported.stdout + imported.stderr
        ada = {"email": "ada@example.com", "purpose": "newsletter", "channel": "email"}

        async def imported_ada() -> bool:
            answer = (await client.get("/v1/decision", params=ada)).json()
            return bool(answer["reason"] == "consent_given")

        await wait_until(imported_ada, 30, "the imported subscriber to be projected")
        # the restore moved every event and kept each subject's hash chain
        chain = (await client.get("/v1/subjects/e2e-2/verify")).json()
        assert (chain["events"], chain["valid"]) == (2, True)
        verified = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "services.cli.main", "verify"],
            env={
                **{k: v for k, v in os.environ.items() if k not in SERVER_VARIABLES},
                "LEDGER_DATA_DIR": str(stack.data_dir),
            },
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert "using the servers of the running `up`" in verified.stdout
        assert "every chain is intact" in verified.stdout
        # so does `keys create`, and the API accepts its key at once
        made = await asyncio.to_thread(
            subprocess.run,
            [
                sys.executable,
                "-m",
                "services.cli.main",
                "keys",
                "create",
                "--scope",
                "decide",
                "--name",
                "e2e",
            ],
            env={
                **{k: v for k, v in os.environ.items() if k not in SERVER_VARIABLES},
                "LEDGER_DATA_DIR": str(stack.data_dir),
            },
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert made.returncode == 0, made.stdout + made.stderr
        assert "using the servers of the running `up`" in made.stdout
        decide = {"Authorization": f"Bearer {made.stdout.strip().splitlines()[-1]}"}

        async def decide_key_works() -> bool:
            answer = await client.get("/v1/decision", params=params, headers=decide)
            return answer.status_code == 200

        await wait_until(decide_key_works, 15, "the API to accept the new key")
        events = await client.get("/v1/subjects/e2e-2/events", headers=decide)
        assert events.status_code == 403
        # the restored log accepts new events after the old ones
        more = await command(client, "e2e-2", "withdrawals", {})
        history = (
            await client.get("/v1/subjects/e2e-2/events", params={"min_token": more["token"]})
        ).json()["events"]
        assert [e["event_id"] for e in history][-1] == more["event_id"]
        assert len(history) == 3
    assert stack.interrupt() == 0
    stack.assert_nothing_left_running()
    assert not (stack.data_dir / "session.env").exists()


async def test_children_do_not_outlive_a_killed_up(stack: Stack) -> None:
    """Even SIGKILL of `up` (no chance to clean up) stops the API, projector and broker."""
    stack.start()
    await stack.ready()
    broker = stack.embedded_broker_port()
    assert stack.process is not None
    stack.process.send_signal(signal.SIGKILL)
    stack.process.wait()
    stack.process = None

    async def ports_closed() -> bool:
        for port in (stack.port,) if broker is None else (broker, stack.port):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return False
            except OSError:
                pass
        return True

    await wait_until(ports_closed, 30, "the children of a killed `up` to stop")


async def test_up_uses_the_servers_it_is_given(real_servers: Servers, tmp_path: Path) -> None:
    """With KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL set, `up` starts no server of its own
    and leaves those running when it stops."""
    settings = await make_settings(real_servers)
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "DATABASE_URL": settings.database_url,
        "LEDGER_TOPIC": settings.topic,
        "LEDGER_KAFKA_IDEMPOTENCE": "true" if real_servers.idempotence else "false",
        "LEDGER_ADMIN_KEY": TEST_ADMIN_KEY,
    }
    stack = Stack(tmp_path, free_port(), env)
    try:
        stack.start()
        await stack.ready()
        banner = stack.log.read_text()
        assert "(external; topic" in banner and "(external)" in banner
        assert "development only" not in banner.lower()  # no embedded server runs
        assert not (tmp_path / "pg").exists()
        assert "  Admin key   LEDGER_ADMIN_KEY (key id testadmin)" in banner
        assert not (tmp_path / "admin.key").exists()
        async with httpx.AsyncClient(
            base_url=stack.url, timeout=30, headers=ADMIN_HEADERS
        ) as client:
            grant = await command(client, "ext-1", "consents", {"purpose": "newsletter"})
            params = {
                "subject_id": "ext-1",
                "purpose": "newsletter",
                "channel": "email",
                "min_token": grant["token"],
            }

            async def projected() -> bool:
                # the projector's first group join may outlast one bounded min_token wait
                return (await client.get("/v1/decision", params=params)).status_code == 200

            await wait_until(projected, 60, "the decision to reflect the grant")
            answer = await client.get("/v1/decision", params=params)
            assert answer.json()["reason"] == "consent_given"
        assert stack.interrupt() == 0
    finally:
        stack.kill()
    conn = await asyncpg.connect(settings.database_url)
    try:
        # the one grant; the seeded purposes are keyed purpose/<id>, no subject
        subjects = "SELECT count(*) FROM journal WHERE subject_id NOT LIKE 'purpose/%'"
        assert await conn.fetchval(subjects) == 1
        purposes = "SELECT count(*) FROM journal WHERE subject_id LIKE 'purpose/%'"
        assert await conn.fetchval(purposes) == FILE_PURPOSES
    finally:
        await conn.close()
