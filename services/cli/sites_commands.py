"""`consent-ledger sites create|list|revoke`: the websites whose banners record their visitors'
choices (the same as POST, GET /v1/sites and DELETE /v1/sites/{site_id}). Needs DATABASE_URL,
the catalogue, and for `create` the secrets (LEDGER_API_KEY_HASH_KEY); running APIs learn of
a new or revoked site at once (NOTIFY), at the latest after LEDGER_API_KEY_REFRESH_S.
"""

from __future__ import annotations

import argparse
import sys
from urllib.parse import urlsplit

from projections.sites import SiteRow, list_sites, revoke_site
from services.bootstrap import operator_database
from services.config import Settings, is_loopback
from services.identity.secrets import SecretsError
from services.identity.site_registry import check_registration, create_site, names
from services.reads.purpose_cache import PurposeCache
from services.rules.catalogue import CatalogueError, load_catalogue


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sites = sub.add_parser("sites", help="register, list or revoke websites and their site keys")
    actions = sites.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="register a site; its key is shown once")
    create.add_argument("--name", required=True, help="the site, e.g. shop")
    create.add_argument(
        "--origin", action="append", required=True, help="https://host[:port]; repeat for several"
    )
    create.add_argument(
        "--purpose", action="append", help="default: the catalogue's browser_collectable ones"
    )
    actions.add_parser("list", help="every site: whole id, name, origins, purposes, revoked")
    revoke = actions.add_parser("revoke", help="stop a site's key working, for good")
    revoke.add_argument("site_id", help="the id `sites list` shows")


def table(rows: list[SiteRow]) -> str:
    """`sites list`: one line per site with its whole id; never the key or its hash."""
    lines = [("id", "name", "origins", "purposes", "revoked")]
    lines += [
        (
            r.site_id,
            r.name,
            ",".join(r.origins),
            ",".join(r.purposes),
            r.revoked_at.isoformat(timespec="seconds") if r.revoked_at else "-",
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(5)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


async def run_sites(settings: Settings, args: argparse.Namespace) -> int:
    async with operator_database(settings) as conn:
        if args.action == "list":
            print(table(await list_sites(conn)))
            return 0
        if args.action == "revoke":
            row = await revoke_site(conn, args.site_id)
            if row is None:
                print(f"consent-ledger sites revoke: no site {args.site_id!r}", file=sys.stderr)
                return 1
            print(
                f"revoked site {row.site_id} ({row.name}); running APIs refuse its key at once,"
                f" at the latest within {settings.api_key_refresh_s} s"
            )
            return 0
        try:
            # the log's catalogue is the truth (the file stands in for what it lacks)
            purposes = PurposeCache(None, load_catalogue(settings.catalogue_file))
            hash_key = settings.secrets().api_key_hash_key
        except (CatalogueError, SecretsError) as exc:
            print(f"consent-ledger sites create: {exc}", file=sys.stderr)
            return 2
        await purposes.reload(conn)
        catalogue = purposes.catalogue
        loopback = is_loopback(urlsplit(settings.public_base_url).hostname or "")
        registration, problems = check_registration(
            args.name, args.origin, args.purpose, catalogue, http_loopback=loopback
        )
        if registration is None:
            print(f"consent-ledger sites create: {names(problems)}", file=sys.stderr)
            return 2
        key, row = await create_site(conn, registration, hash_key)
        print(f"created site {row.site_id} ({row.name}) for {', '.join(row.origins)}")
        print(f"purposes: {', '.join(row.purposes)}")
        print("the site key (publishable: it goes in the page; the ledger keeps only its hash):")
        print(key)
        return 0
