"""`consent-ledger up`: the whole ledger on one machine with one command.

Starts embedded PostgreSQL and the embedded broker unless DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS
say otherwise, creates the topic, migrates, restores the log from the journal if the broker came
back empty, then runs the projector and the API as child processes. Ctrl-C (or SIGTERM) stops
the children first, then the servers.

It registers an admin API key: LEDGER_ADMIN_KEY when set, else a development key made on the
first start, printed once in the banner and kept in LEDGER_DATA_DIR/admin.key (mode 0600) so
the developer can find it again.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from projections import offsets
from projections.migrate import migrate
from services.bootstrap import operator_database
from services.config import Settings
from services.identity.api_key_store import (
    ADMIN_KEY_NAME,
    KeyConflict,
    Registered,
    register_admin_key,
)
from services.identity.api_keys import FROM_ADMIN_VARIABLE, FROM_DEV_KEY, admin_key_problem, new_key
from services.identity.secrets import SecretsError, complete_secrets_file, ensure_secrets_file
from services.ledger.topic import ensure_topic, highwaters
from services.operations.restore_log import restore_if_log_empty
from services.stack.embedded import EmbeddedKafka, EmbeddedPostgres, die_with_parent
from services.stack.session import remove_session, write_session
from services.telemetry.logs import without_password


def run_up(settings: Settings) -> int:
    data_dir = Path(settings.data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    settings, generated = _with_secrets(settings, data_dir / "secrets.toml")
    admin = _admin_key(settings, data_dir / ADMIN_KEY_FILE)
    postgres = EmbeddedPostgres(data_dir / "pg") if not settings.database_url else None
    kafka = (
        EmbeddedKafka(log_file=data_dir / "broker.log")
        if not settings.kafka_bootstrap_servers
        else None
    )
    children: dict[str, subprocess.Popen[bytes]] = {}
    stopping = False

    def request_stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        database_url = postgres.start() if postgres else settings.database_url
        bootstrap = kafka.start() if kafka else settings.kafka_bootstrap_servers
        settings = settings.with_servers(
            bootstrap,
            database_url,
            idempotence=settings.kafka_idempotence if kafka is None else False,
        )
        if kafka is not None:
            # the embedded broker makes a group join wait half the session timeout
            settings = replace(settings, kafka_session_timeout_ms=6000)
        try:
            restored, registered = asyncio.run(_prepare(settings, admin))
        except KeyConflict as exc:
            print(f"consent-ledger up: admin key: {exc}", file=sys.stderr)
            return 2
        write_session(settings)
        env = {**os.environ, **settings.as_environment()}
        # the webhook dispatcher beside the projector (its own consumer group and positions)
        for command in ("projector", "webhooks-dispatcher", "api"):
            children[command] = subprocess.Popen(
                [sys.executable, "-m", "services.cli.main", command],
                env=env,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        # with a valid key, a 503 says why (without one, /readyz answers only the status)
        key = admin.key if registered.row.revoked_at is None else None
        if not _wait_ready(settings, key, list(children.values()), lambda: stopping):
            return 0 if stopping else 1
        _print_banner(settings, postgres, kafka, restored, generated, admin, registered)
        while not stopping:
            for name, child in children.items():
                if child.poll() is not None:
                    print(f"consent-ledger: the {name} process exited", file=sys.stderr)
                    return 1
            time.sleep(0.2)
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        api, projector = children.get("api"), children.get("projector")
        if api is not None:
            _stop(api)
        if projector is not None and kafka is not None and projector.poll() is None:
            _drain(settings)
        if projector is not None:
            _stop(projector)
        dispatcher = children.get("webhooks-dispatcher")
        if dispatcher is not None:
            _stop(dispatcher)
        remove_session(settings)
        if kafka:
            kafka.stop()
        if postgres:
            postgres.stop()
        print("consent-ledger: stopped", flush=True)


def _with_secrets(settings: Settings, path: Path) -> tuple[Settings, bool]:
    """Use the configured secrets, or a secrets file of the data directory, made on first
    start: local runs need no set-up, and the keys persist with the embedded database."""
    try:
        settings.secrets()
        return settings, False
    except SecretsError:
        if settings.secrets_file or settings.master_keys or settings.link_keys:
            raise
    written = ensure_secrets_file(path)
    if not written:
        complete_secrets_file(path)  # a file from before receipt keys existed
    return replace(settings, secrets_file=str(path)), written


ADMIN_KEY_FILE = "admin.key"
DEV_KEY_NAME = "dev-admin"


@dataclass(frozen=True, slots=True)
class AdminKey:
    key: str
    name: str
    #: the key's file, when it is `up`'s development key
    file: Path | None
    generated: bool


def _admin_key(settings: Settings, path: Path) -> AdminKey:
    """LEDGER_ADMIN_KEY, else the development key of the data directory, made on first start
    (the file is created exclusively, mode 0600, and never overwritten)."""
    if settings.admin_key:
        return AdminKey(settings.admin_key, ADMIN_KEY_NAME, None, False)
    try:
        key = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        _, key = new_key()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(key + "\n")
        return AdminKey(key, DEV_KEY_NAME, path, True)
    problem = admin_key_problem(key)
    if problem:
        raise SystemExit(f"consent-ledger up: {path}: the key {problem}; delete the file")
    return AdminKey(key, DEV_KEY_NAME, path, False)


async def _prepare(settings: Settings, admin: AdminKey) -> tuple[int, Registered]:
    await ensure_topic(settings)
    async with operator_database(settings) as conn:
        await migrate(conn)
        origin = FROM_DEV_KEY if admin.file else FROM_ADMIN_VARIABLE
        hash_key = settings.secrets().api_key_hash_key
        registered = await register_admin_key(conn, admin.key, hash_key, admin.name, origin)
        return await restore_if_log_empty(settings, conn), registered


def _wait_ready(
    settings: Settings,
    key: str | None,
    children: list[subprocess.Popen[bytes]],
    stopped: Callable[[], bool],
) -> bool:
    url = f"http://{settings.host}:{settings.port}/readyz"
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    ask = urllib.request.Request(url, headers=headers)
    deadline = time.monotonic() + 120
    why = ""
    while time.monotonic() < deadline:
        if stopped():
            return False
        if any(c.poll() is not None for c in children):
            print("consent-ledger: a child process exited during start-up", file=sys.stderr)
            return False
        try:
            with urllib.request.urlopen(ask, timeout=1) as response:
                if response.status == 200:
                    return True
        except urllib.error.HTTPError as refused:  # e.g. the projector stopped by a loss
            why = _detail(refused)
        except OSError:
            pass
        time.sleep(0.2)
    print(f"consent-ledger: {url} not ready after 120 s{why}", file=sys.stderr)
    return False


def _detail(refused: urllib.error.HTTPError) -> str:
    """': <detail>' of a problem answer, or nothing."""
    try:
        detail = json.loads(refused.read()).get("detail")
    except (OSError, ValueError, AttributeError):
        return ""
    return f": {detail}" if isinstance(detail, str) else ""


def _drain(settings: Settings, timeout_s: float = 60) -> None:
    """Let the projector apply every acknowledged event before the in-memory broker stops:
    the journal is what the next start restores the log from."""
    try:
        behind = asyncio.run(_wait_projected(settings, timeout_s))
    except Exception as exc:
        behind = -1
        print(f"consent-ledger: could not check the projection: {exc}", file=sys.stderr)
    if behind:
        print(
            "consent-ledger: WARNING: the projection had not applied every event when the"
            " embedded broker stopped; those events are not in the journal and will not be"
            " restored on the next start",
            file=sys.stderr,
        )


async def _wait_projected(settings: Settings, timeout_s: float) -> int:
    """Wait until the stored offsets reach the log's high-water marks; returns the lag left."""
    marks = await highwaters(settings.kafka, settings.topic)
    async with operator_database(settings) as conn:
        deadline = time.monotonic() + timeout_s
        while True:
            stored = await offsets.load(conn, settings.topic)
            lag = sum(max(0, end - stored.get(p, 0)) for p, end in marks.items())
            if lag == 0 or time.monotonic() > deadline:
                return lag
            await asyncio.sleep(0.1)


def _stop(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
    try:
        child.wait(15)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def _print_banner(
    settings: Settings,
    postgres: EmbeddedPostgres | None,
    kafka: EmbeddedKafka | None,
    restored: int,
    generated: bool,
    admin: AdminKey,
    registered: Registered,
) -> None:
    api = f"http://{settings.host}:{settings.port}"
    broker = (
        "embedded Tansu, log in memory, NO authentication: anyone on this machine can write to it"
        if kafka
        else "external"
    )
    database = (
        f"embedded, data in {postgres.data_dir}, password in {postgres.password_file},"
        " socket in the data directory"
        if postgres
        else "external"
    )
    lines = [
        "consent ledger is up" + (" (development only)" if postgres or kafka else ""),
        f"  API         {api}   (try {api}/openapi.json; the other routes need the admin key:"
        f' curl -H "Authorization: Bearer $LEDGER_KEY" {api}/v1/purposes)',
    ]
    if settings.public_port:
        public = f"http://{settings.public_host}:{settings.public_port}"
        lines.append(f"  Public      {public}   (only the /u/ and /p/ pages and /healthz)")
    lines += [
        f"  Kafka       {settings.kafka_bootstrap_servers}   ({broker}; topic {settings.topic})",
        f"  PostgreSQL  {without_password(settings.database_url)}   ({database})",
    ]
    if settings.secrets_file:
        made = "generated now; back it up with the database" if generated else "kept"
        lines.append(f"  Secrets     {settings.secrets_file}   ({made})")
    lines.append(_admin_line(admin, registered))
    if restored:
        lines.append(f"  restored {restored} events to the empty broker from the journal")
    if postgres or kafka:
        lines.append(
            "Development only: the embedded servers are for one developer's machine, not for"
            " production (see docs/operators/running.md)."
        )
    lines.append("Press Ctrl-C to stop.")
    print("\n".join(lines), flush=True)


def _admin_line(admin: AdminKey, registered: Registered) -> str:
    """The banner's admin key: the key itself only on the start that made it."""
    kid = registered.row.key_id
    if registered.row.revoked_at is not None:
        fix = f"delete {admin.file} for a new one" if admin.file else "set another"
        return f"  Admin key   {kid} is REVOKED; {fix}"
    if admin.file is None:
        return f"  Admin key   LEDGER_ADMIN_KEY (key id {kid})"
    if admin.generated:
        return (
            f"  Admin key   {admin.key}\n"
            f"              (generated now, shown once; also in {admin.file}, mode 0600)"
        )
    return f"  Admin key   in {admin.file}   (export LEDGER_KEY=$(cat {admin.file}))"
