"""The operator commands beside a running ledger: import, verify, checkpoint-verify, retention,
keys, sites, webhooks, purposes, resume-projector, backup, restore, restore-log, rebuild and
require-record-macs. Each command's work lives in its own module; this one only declares their
arguments, which servers they need, and calls them. With no servers set they use those of a
running `consent-ledger up` (SESSION_COMMANDS).
"""

from __future__ import annotations

import argparse
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeAlias

from services.cli.keys_commands import add_parser as add_keys_parser
from services.cli.keys_commands import run_keys
from services.cli.purposes_commands import add_parser as add_purposes_parser
from services.cli.purposes_commands import run_purposes
from services.cli.sites_commands import add_parser as add_sites_parser
from services.cli.sites_commands import run_sites
from services.cli.webhooks_commands import add_parser as add_webhooks_parser
from services.cli.webhooks_commands import run_webhooks
from services.config import Settings
from services.operations.require_record_macs import add_parser as add_cutoff_parser

if TYPE_CHECKING:
    from services.proof.checkpoint_verify import Options as CheckpointOptions

#: services/operations/backup.py, restore_backup.py and restore_log.py
BACKUP_COMMANDS: Final = ("backup", "restore", "restore-log")
OPERATOR_COMMANDS: Final = (
    *("import", "verify", "checkpoint-verify", "retention", "keys", "sites", "webhooks"),
    "purposes",
    "resume-projector",
    *BACKUP_COMMANDS,
    "rebuild",
    "require-record-macs",
)
#: operator commands that, with no servers set, use those of a running `consent-ledger up`
SESSION_COMMANDS: Final = ("rewrap-keys", *OPERATOR_COMMANDS)

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def add_operator_parsers(sub: Subparsers) -> None:
    _import_parser(sub)
    _verify_parsers(sub)
    retention = sub.add_parser(
        "retention",
        help="purge erased subjects' proof whose proof_retention has ended (run it daily)",
    )
    retention.add_argument("--dry-run", action="store_true", help="report, delete nothing")
    add_keys_parser(sub)
    add_sites_parser(sub)
    add_webhooks_parser(sub)
    add_purposes_parser(sub)
    sub.add_parser(
        "resume-projector",
        help="clear a stop of the projectors by loss detection, once the log or the projection"
        " is repaired (DATABASE_URL only)",
    )
    _backup_parsers(sub)
    _rebuild_parser(sub)
    add_cutoff_parser(sub)


def operator_command(
    settings: Settings, args: argparse.Namespace
) -> Coroutine[Any, Any, int] | None:
    """The coroutine that runs an operator command, or None for any other command."""
    if args.command == "import":
        from services.importing.run import ImportOptions, run_import

        options = ImportOptions(
            args.file, args.format, args.purpose, args.channel, args.rejects, not args.no_progress
        )
        return run_import(settings, options)
    if args.command == "keys":
        return run_keys(settings, args)
    if args.command == "sites":
        return run_sites(settings, args)
    if args.command == "webhooks":
        return run_webhooks(settings, args)
    if args.command == "purposes":
        return run_purposes(settings, args)
    if args.command == "retention":
        from services.proof.retention import run_retention

        return run_retention(settings, dry_run=args.dry_run)
    if args.command == "rebuild":
        from services.cli.rebuild_command import run_rebuild
        from services.operations.rebuild import RebuildOptions

        rebuild = RebuildOptions(rollback=args.rollback, progress=not args.no_progress)
        return run_rebuild(settings, rebuild, drop=args.drop_previous)
    if args.command == "verify":
        from services.proof.verify_chains import run_verify

        return run_verify(settings, progress=not args.no_progress)
    if args.command == "checkpoint-verify":
        from services.proof.checkpoint_verify import run_checkpoint_verify

        return run_checkpoint_verify(settings, checkpoint_options(args))
    if args.command == "resume-projector":
        from services.operations.projector_resume import run_resume_projector

        return run_resume_projector(settings)
    if args.command == "backup":
        from services.operations.backup import run_backup

        return run_backup(settings, args.file, progress=not args.no_progress)
    if args.command == "restore":
        from services.operations.restore_backup import RestoreOptions, run_restore

        wanted = RestoreOptions(
            args.file, tuple(args.only), args.create_topic, not args.no_progress
        )
        return run_restore(settings, wanted)
    if args.command == "require-record-macs":
        from services.operations.require_record_macs import options_from, run_require_record_macs

        return run_require_record_macs(settings, options_from(args))
    if args.command == "restore-log":
        from services.operations.restore_log import run_restore_log

        return run_restore_log(
            settings,
            source_topic=args.from_topic,
            create_topic=args.create_topic,
            progress=not args.no_progress,
        )
    return None


def checkpoint_options(args: argparse.Namespace) -> CheckpointOptions:
    from services.proof.checkpoint_verify import Options

    return Options(args.source, args.checkpoints, args.save)


def required_servers(args: argparse.Namespace) -> tuple[str, ...]:
    """The server settings a command needs (most need both)."""
    database_only = ("verify", "retention", "keys", "sites", "webhooks", "resume-projector")
    diff_only = args.command == "purposes" and args.action == "diff"
    if args.command in database_only or diff_only or getattr(args, "drop_previous", False):
        return ("DATABASE_URL",)
    if args.command in ("backup", "restore"):
        return ("KAFKA_BOOTSTRAP_SERVERS",)
    if args.command == "checkpoint-verify":
        from services.proof.checkpoint_verify import required_servers

        return required_servers(checkpoint_options(args))
    return ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")


def _backup_parsers(sub: Subparsers) -> None:
    from services.operations.backup_format import ROLES

    backup = sub.add_parser("backup", help="write the event and contact-check topics to FILE")
    restore = sub.add_parser("restore", help="produce a backup FILE back into empty topics")
    restore_log = sub.add_parser("restore-log", help="rebuild a lost event topic from the journal")
    for command in (backup, restore):
        command.add_argument("file", type=Path, metavar="FILE", help="Avro object container file")
    restore.add_argument("--only", choices=ROLES, action="append", default=[], help="one topic")
    restore_log.add_argument(
        "--from-topic", metavar="NAME", help="the name the database knows the lost topic by"
    )
    for command in (restore, restore_log):
        command.add_argument("--create-topic", action="store_true", help="create it if missing")
    for command in (backup, restore, restore_log):
        command.add_argument("--no-progress", action="store_true", help="no progress bar")


def _rebuild_parser(sub: Subparsers) -> None:
    rebuild = sub.add_parser(
        "rebuild",
        help="replay the event topic into fresh tables while the API serves the live ones,"
        " then switch to them atomically",
    )
    which = rebuild.add_mutually_exclusive_group()
    which.add_argument(
        "--rollback",
        action="store_true",
        help="switch back to the tables the last rebuild replaced (brought up to date first)",
    )
    which.add_argument(
        "--drop-previous", action="store_true", help="drop the tables rebuilds replaced, then exit"
    )
    rebuild.add_argument("--no-progress", action="store_true", help="no progress bar")


def _verify_parsers(sub: Subparsers) -> None:
    from services.proof.checkpoint_verify import SOURCES

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


def _import_parser(sub: Subparsers) -> None:
    from services.importing.formats import FORMATS

    imp = sub.add_parser("import", help="record a subscriber export (CSV) as consent events")
    imp.add_argument("file", type=Path, metavar="FILE.csv", help="the export, UTF-8 CSV")
    imp.add_argument("--purpose", required=True, help="catalogue purpose, e.g. newsletter")
    imp.add_argument("--channel", required=True, help="channel of the purpose, e.g. email")
    imp.add_argument("--format", choices=sorted(FORMATS), default="generic")
    imp.add_argument("--rejects", type=Path, help="rejects file (default FILE.csv.rejects.csv)")
    imp.add_argument("--no-progress", action="store_true", help="no progress bar")
