"""`consent-ledger`: run the whole stack (`up`) or one part of it against external servers."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import asyncpg

from projections.migrate import migrate
from services.bootstrap import operator_database
from services.cli.operator_commands import (
    OPERATOR_COMMANDS,
    SESSION_COMMANDS,
    add_operator_parsers,
    operator_command,
    required_servers,
)
from services.config import Settings, SettingsError
from services.identity.secrets import (
    SecretsError,
    complete_secrets_file,
    ensure_secrets_file,
    generate_secrets_file,
    write_writer_keys_file,
)
from services.ledger import idempotency
from services.ledger.topic import WeakTopicError, ensure_topic
from services.rules.catalogue import CatalogueError, load_catalogue
from services.stack.session import environment_with_session
from services.telemetry.logs import configure_logging

COMMANDS: Final = (
    "up",
    "api",
    "projector",
    "webhooks-dispatcher",
    "init",
    "secrets",
    "rewrap-keys",
    *OPERATOR_COMMANDS,
)
#: commands that MAC or check event records with the writer keys (LEDGER_WRITER_KEYS)
WRITER_KEY_COMMANDS: Final = ("projector", "webhooks-dispatcher", "restore-log", "rebuild")

log = logging.getLogger("consent_ledger")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="consent-ledger", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start embedded servers (unless configured), API and projector")
    up.add_argument("--port", type=int, help="API port (default LEDGER_PORT or 8000)")
    api = sub.add_parser(
        "api", help="serve the HTTP API against KAFKA_BOOTSTRAP_SERVERS/DATABASE_URL"
    )
    api.add_argument("--port", type=int, help="API port (default LEDGER_PORT or 8000)")
    sub.add_parser("projector", help="consume the event topic into PostgreSQL")
    sub.add_parser("webhooks-dispatcher", help="deliver the event topic to webhook subscriptions")
    init = sub.add_parser("init", help="create the topic and migrate the database, then exit")
    init.add_argument(
        "--generate-secrets",
        action="store_true",
        help="write a fresh LEDGER_SECRETS_FILE first if that file does not exist yet",
    )
    init.add_argument(
        "--writer-keys-file",
        metavar="PATH",
        help="also write (or refresh) a secrets file holding only the writer keys, for"
        " the projector (mode 0600)",
    )
    secrets = sub.add_parser("secrets", help="generate a secrets file (keys for identities, links)")
    secrets.add_argument("action", choices=["generate"])
    secrets.add_argument("--file", help="write here (mode 0600, never overwritten), not stdout")
    sub.add_parser(
        "rewrap-keys",
        help="re-wrap every subject's data key under the current (first) LEDGER_MASTER_KEYS key",
    )
    add_operator_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    env: dict[str, str] = dict(os.environ)
    if args.command in SESSION_COMMANDS:
        env, session = environment_with_session(env)
        if session is not None:
            print(f"consent-ledger: using the servers of the running `up` ({session})")
    if getattr(args, "port", None):
        env["LEDGER_PORT"] = str(args.port)  # checked with the rest (LEDGER_PUBLIC_PORT differs)
    try:
        settings = Settings.from_env(env)
        load_catalogue(settings.catalogue_file)  # refuse a broken catalogue before starting
    except (SettingsError, CatalogueError) as exc:
        print(f"consent-ledger: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    for warning in settings.kafka.warnings(remote=settings.kafka_is_remote):
        log.warning("%s", warning)
    if args.command == "up":
        from services.operations.restore_log import RestoreError
        from services.stack.embedded import EmbeddedServersMissing
        from services.stack.up import run_up

        try:
            return run_up(settings)
        except (SecretsError, RestoreError, WeakTopicError, EmbeddedServersMissing) as exc:
            print(f"consent-ledger up: {exc}", file=sys.stderr)
            return 2
    if args.command == "secrets":
        return _generate_secrets(args.file)
    if args.command == "init" and args.generate_secrets:
        if not settings.secrets_file:
            print(
                "consent-ledger init --generate-secrets: set LEDGER_SECRETS_FILE", file=sys.stderr
            )
            return 2
        if ensure_secrets_file(Path(settings.secrets_file)):
            log.info("wrote new secrets to %s", settings.secrets_file)
        for added in complete_secrets_file(Path(settings.secrets_file)):
            log.info("added %s to %s", added, settings.secrets_file)
    if args.command in ("api", "rewrap-keys", "import") or getattr(args, "action", "") == "apply":
        try:
            settings.secrets()
        except SecretsError as exc:
            print(f"consent-ledger {args.command}: {exc}", file=sys.stderr)
            return 2
    if args.command == "init" and args.writer_keys_file:
        try:
            write_writer_keys_file(Path(args.writer_keys_file), settings.writer_key_ring())
        except (SecretsError, OSError) as exc:
            print(f"consent-ledger init --writer-keys-file: {exc}", file=sys.stderr)
            return 2
        log.info("wrote the writer keys to %s", args.writer_keys_file)
    required = required_servers(args)
    missing = [
        name
        for name, value in (
            ("KAFKA_BOOTSTRAP_SERVERS", settings.kafka_bootstrap_servers),
            ("DATABASE_URL", settings.database_url),
        )
        if not value and name in required
    ]
    if missing:
        print(f"consent-ledger {args.command}: set {' and '.join(missing)}", file=sys.stderr)
        return 2
    if args.command in WRITER_KEY_COMMANDS and not getattr(args, "drop_previous", False):
        try:  # they MAC or check records, and need no other secret
            settings.writer_key_ring()
        except SecretsError as exc:
            print(f"consent-ledger {args.command}: {exc}", file=sys.stderr)
            return 2
    if args.command == "api":
        return run_api(settings)
    if args.command == "projector":
        return _run_async(run_projector(settings))
    if args.command == "webhooks-dispatcher":
        return _run_async(run_dispatcher(settings))
    if args.command == "rewrap-keys":
        return _run_async(run_rewrap(settings))
    operator = operator_command(settings, args)
    if operator is not None:
        return _run_async(operator)
    return _run_async(run_init(settings))


def _generate_secrets(path: str | None) -> int:
    if path is None:
        print(generate_secrets_file(), end="")
        return 0
    if not ensure_secrets_file(Path(path)):
        print(f"consent-ledger secrets: {path} exists; not overwritten", file=sys.stderr)
        return 1
    print(f"consent-ledger secrets: wrote {path} (mode 0600)")
    return 0


async def run_rewrap(settings: Settings) -> int:
    """Everything the master key wraps, moved under the current one: the subjects' data keys,
    the webhook signing secrets and the keys of erasures' captured identifiers."""
    from services.identity import keystore, webhook_secrets
    from services.webhooks import erasure_capture

    master = settings.secrets().master
    async with operator_database(settings) as conn:
        moved = await keystore.rewrap(conn, master)
        secrets = await webhook_secrets.rewrap(conn, master)
        captures = await erasure_capture.rewrap(conn, master)
    log.info(
        "re-wrapped %d data keys, %d webhook secrets and %d erasure captures under master key %s",
        moved,
        secrets,
        captures,
        master.current_id,
    )
    return 0


def _run_async(coro: asyncio.Future[int] | asyncio.Task[int] | object) -> int:
    import uvloop

    result: int = uvloop.run(coro)  # type: ignore[arg-type]
    return result


async def run_init(settings: Settings) -> int:
    try:
        created = await ensure_topic(settings)
    except WeakTopicError as exc:
        print(f"consent-ledger init: {exc}", file=sys.stderr)
        return 2
    async with operator_database(settings) as conn:
        applied = await migrate(conn)
        await _hash_legacy_keys(settings, conn)
    log.info("topic %s %s", settings.topic, "created" if created else "exists")
    log.info("migrations applied: %s", ", ".join(applied) or "none (up to date)")
    return 0


async def _hash_legacy_keys(settings: Settings, conn: asyncpg.Connection) -> None:
    """Idempotency keys kept in clear before migration 0016 become their keyed hash now when
    `init` has the secrets; without them the API and the importer do it when they start."""
    try:
        secrets = settings.secrets()
    except SecretsError:
        return
    await idempotency.hash_legacy_keys(conn, secrets.blind_index_key)


def run_api(settings: Settings) -> int:
    import uvicorn

    from services.api.app import create_app
    from services.api.public_listener import listener_sockets

    if not settings.public_port:
        uvicorn.run(create_app(settings), **api_server_options(settings))
        return 0
    # one process, one app, two sockets: the app tells them apart by the port a request
    # arrived on (services/api/public_listener.py)
    server = uvicorn.Server(uvicorn.Config(create_app(settings), **api_server_options(settings)))
    server.run(sockets=listener_sockets(settings))
    return 0 if server.started else 3


def api_server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options as the API runs. uvicorn keeps the logging configure_logging set up
    (log_config=None) and writes no access log of its own: that would print each concrete path
    with its query string (`?email=`); services/api/observation.py writes one line per request
    naming the route template instead."""
    return {
        "host": settings.host,
        "port": settings.port,
        "loop": "uvloop",
        "http": "httptools",
        "lifespan": "on",
        "access_log": False,
        "log_config": None,
        "log_level": settings.log_level,
        "forwarded_allow_ips": settings.forwarded_allow_ips,
        "limit_concurrency": settings.api_concurrency_limit,
        "timeout_graceful_shutdown": 5,
    }


async def run_projector(settings: Settings) -> int:
    from services.bootstrap import open_projector
    from services.projector.process import run_projector_process

    return await run_projector_process(open_projector(settings))


async def run_dispatcher(settings: Settings) -> int:
    from services.bootstrap import open_dispatcher
    from services.webhooks.dispatcher_process import run_dispatcher_process

    return await run_dispatcher_process(await open_dispatcher(settings))


if __name__ == "__main__":
    sys.exit(main())
