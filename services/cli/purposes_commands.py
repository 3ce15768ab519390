"""`consent-ledger purposes diff|apply`: how the catalogue file (LEDGER_CATALOGUE_PATH) differs
from the log's current purpose catalogue, and recording the file's changes as new versions. The
log is the truth once seeded (docs/developers/design/purpose-catalogue.md): an edited file is
reported, and applied only by `apply`, which shows the difference first. `diff` needs
DATABASE_URL; `apply` the servers and the secrets, as the API does.

Design: docs/developers/design/purpose-catalogue.md
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiokafka.errors import KafkaError

from projections import purposes
from services.bootstrap import close_ledger, open_ledger, operator_database, record_purpose_versions
from services.config import Settings
from services.ledger.errors import BrokerUnavailable
from services.rules.catalogue import Catalogue, CatalogueError, load_catalogue
from services.rules.catalogue_events import (
    APPLY_ACTOR,
    FILE_ACTOR,
    applied_versions,
    differences,
    version_of,
)
from services.rules.catalogue_history import EPOCH, CatalogueHistory


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "purposes", help="compare the catalogue file with the log's catalogue, or record it"
    )
    actions = parser.add_subparsers(dest="action", required=True)
    actions.add_parser(
        "diff", help="how the file differs from the log's current catalogue (exit 1 if it does)"
    )
    actions.add_parser(
        "apply", help="record the file's changed purposes as new versions (shows the diff first)"
    )


def explain(file: Catalogue, log: CatalogueHistory) -> list[str]:
    """The differences as lines a person reads: each changed field with the log's value and
    the file's."""
    lines = []
    current = log.current
    for d in differences(file, log):
        if d.change == "changed":
            latest = log.latest(d.purpose)
            since = latest.version if latest is not None else "?"
            lines.append(f"{d.purpose}: changed (log version {since})")
            theirs, mine = current.purposes[d.purpose].as_json(), file.purposes[d.purpose].as_json()
            for name in d.fields:
                lines.append(f"  {name}: log {_shown(theirs[name])}")
                lines.append(f"  {' ' * len(name)}  file {_shown(mine[name])}")
        elif d.change == "added":
            lines.append(
                f"{d.purpose}: only in the file (apply records its version 1, in force from then)"
            )
        elif d.change == "retired":
            lines.append(
                f"{d.purpose}: retired in the log, still in the file (never seeded again;"
                " remove it from the file, or define it again with PUT /v1/purposes/{id})"
            )
        else:
            lines.append(
                f"{d.purpose}: in force in the log, not in the file (the file never retires a"
                " purpose: DELETE /v1/purposes/{id} does)"
            )
    return lines


def _shown(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


async def log_history(conn: asyncpg.Connection) -> CatalogueHistory:
    rows = await purposes.all_versions(conn)
    return CatalogueHistory(version_of(r.event_type, r.event_data()) for r in rows)


async def run_purposes(settings: Settings, args: argparse.Namespace) -> int:
    try:
        file = load_catalogue(settings.catalogue_file)
    except CatalogueError as exc:
        print(f"consent-ledger purposes: {exc}", file=sys.stderr)
        return 2
    if args.action == "diff":
        async with operator_database(settings) as conn:
            log = await log_history(conn)
        return _print_diff(settings, file, log)
    try:
        ledger = await open_ledger(settings)
    except (OSError, TimeoutError, asyncpg.PostgresError, KafkaError) as exc:
        print(f"consent-ledger purposes apply: cannot reach the servers ({exc})", file=sys.stderr)
        return 1
    try:
        cache = ledger.purposes
        await cache.reload()
        if _print_diff(settings, file, cache.log) == 0:
            return 0
        versions = applied_versions(file, cache.log, datetime.now(UTC))
        if not versions:
            print("nothing to record: the file changes no purpose in force")
            return 0
        seeds = [v for v in versions if v.in_force_from == EPOCH]
        changed = [v for v in versions if v.in_force_from != EPOCH]
        if seeds:
            await record_purpose_versions(ledger, FILE_ACTOR, seeds)
        if changed:
            await record_purpose_versions(ledger, APPLY_ACTOR, changed)
        await cache.reload()
    except BrokerUnavailable as exc:
        print(
            f"consent-ledger purposes apply: {exc}; nothing confirmed, run it again",
            file=sys.stderr,
        )
        return 1
    finally:
        await close_ledger(ledger)
    for v in versions:
        print(f"recorded {v.id} version {v.version}")
    return 0


def _print_diff(settings: Settings, file: Catalogue, log: CatalogueHistory) -> int:
    lines = explain(file, log)
    if not lines:
        print(f"{settings.catalogue_file} and the log's catalogue agree")
        return 0
    print(f"{settings.catalogue_file} differs from the log's catalogue:")
    print("\n".join(lines))
    return 1
