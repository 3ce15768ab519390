"""`consent-ledger keys create|list|revoke`: the HTTP API's keys.

Needs DATABASE_URL (and for `create` the secrets, for LEDGER_API_KEY_HASH_KEY); beside a
running `consent-ledger up` it finds both in the session file, like `import`. A new key is
printed once and stored only as a keyed hash; running APIs learn of a new or revoked key at
once (NOTIFY), at the latest after LEDGER_API_KEY_REFRESH_S.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime

import asyncpg

from services.bootstrap import operator_database
from services.config import Settings
from services.identity.api_key_store import create_key, list_keys, revoke_key
from services.identity.api_keys import SCOPES, KeyRow, name_problem, ordered
from services.identity.secrets import SecretsError


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = sub.add_parser("keys", help="create, list or revoke API keys of the HTTP API")
    actions = keys.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="make a key; it is shown once, then only hashed")
    create.add_argument(
        "--scope",
        action="append",
        required=True,
        choices=SCOPES,
        help="repeat for several; admin implies every scope",
    )
    create.add_argument("--name", required=True, help="who uses it, e.g. crm")
    actions.add_parser("list", help="every key: id, name, scopes, created, revoked (never a key)")
    revoke = actions.add_parser("revoke", help="stop a key working, for good")
    revoke.add_argument("key_id", help="the id `keys list` shows")


def _time(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment else "-"


def table(rows: list[KeyRow]) -> str:
    """`keys list`: one line per key, aligned; never the key or its hash."""
    lines = [("id", "name", "scopes", "created", "revoked")]
    lines += [
        (
            r.key_id,
            r.name,
            ",".join(ordered(r.scopes)),
            _time(r.created_at),
            _time(r.revoked_at),
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(5)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


async def run_keys(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "create":
        problem = name_problem(args.name)
        if problem:
            print(f"consent-ledger keys create: --name {problem}", file=sys.stderr)
            return 2
        try:
            settings.secrets()  # the key's hash is keyed with LEDGER_API_KEY_HASH_KEY
        except SecretsError as exc:
            print(f"consent-ledger keys create: {exc}", file=sys.stderr)
            return 2
    async with operator_database(settings) as conn:
        try:
            return await _run(conn, settings, args)
        except asyncpg.UndefinedTableError:
            print(
                "consent-ledger keys: the database has no api_keys table; run `consent-ledger"
                " init`",
                file=sys.stderr,
            )
            return 2


async def _run(conn: asyncpg.Connection, settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "list":
        print(table(await list_keys(conn)))
        return 0
    if args.action == "create":
        hash_key = settings.secrets().api_key_hash_key
        key, row = await create_key(conn, args.name, frozenset(args.scope), hash_key)
        print(f"created key {row.key_id} ({row.name}) with scopes {', '.join(ordered(row.scopes))}")
        print("the key (shown this once; the ledger keeps only its hash):")
        print(key)
        return 0
    revoked = await revoke_key(conn, args.key_id)
    if revoked is None:
        print(f"consent-ledger keys revoke: no key has the id {args.key_id!r}", file=sys.stderr)
        return 1
    print(
        f"revoked key {revoked.key_id} ({revoked.name}) at {_time(revoked.revoked_at)}; running"
        f" APIs refuse it at once, at the latest within {settings.api_key_refresh_s} s"
    )
    return 0
