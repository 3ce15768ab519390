"""`consent-ledger require-record-macs`: accept, once, a log written before the ledger MACed
its records (projections/mac_cutoffs.py).

It records, for each partition of the event topic, the offset from which a valid MAC is
required: the partition's high-water mark now (read from fetch responses), or the offsets
given with `--at` (to record the same cut-offs again after losing the database). It MACs
nothing: the records below stay as they are and are applied without a MAC; everything written
after must carry one. A recorded cut-off is never moved forward without `--force`, and no
cut-off may lie beyond the end of the log (that would accept records not yet written).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import asyncpg
from aiokafka.errors import KafkaError

from projections import mac_cutoffs
from projections.dead_letters import UNAUTHENTICATED
from projections.mac_cutoffs import CutoffChange
from services.bootstrap import connect_database
from services.config import Settings
from services.ledger.topic import highwaters

COMMAND = "require-record-macs"


@dataclass(frozen=True, slots=True)
class CutoffOptions:
    #: explicit (partition, offset) pairs; None: each partition's high-water mark
    at: tuple[tuple[int, int], ...] | None = None
    yes: bool = False
    force: bool = False


@dataclass(slots=True)
class CutoffOutcome:
    topic: str
    changes: list[CutoffChange] = field(default_factory=list)
    #: the changes were written (confirmed); False when nothing was to write or it was declined
    written: bool = False
    #: records below the cut-offs already refused as unauthenticated: a rebuild applies them
    refused_below: int = 0


def parse_at(text: str) -> tuple[int, int]:
    """`--at PARTITION=OFFSET`, both whole numbers."""
    partition, sep, offset = text.partition("=")
    if not sep or not partition.isdecimal() or not offset.isdecimal():
        raise argparse.ArgumentTypeError(
            f"--at {text!r}: write PARTITION=OFFSET, two whole numbers, e.g. --at 0=1234"
        )
    return int(partition), int(offset)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    command = sub.add_parser(
        COMMAND,
        help="record, per partition, the offset from which event records must carry a MAC"
        " (once, when upgrading a log written before record MACs)",
    )
    command.add_argument(
        "--at",
        type=parse_at,
        action="append",
        metavar="PARTITION=OFFSET",
        help="record this offset for this partition instead of its current end (repeat it;"
        " to record the printed cut-offs again after losing the database)",
    )
    command.add_argument("--yes", action="store_true", help="record without asking")
    command.add_argument(
        "--force",
        action="store_true",
        help="move an already recorded cut-off forward (accepts the records in between"
        " without a MAC, forgeries included)",
    )


def options_from(args: argparse.Namespace) -> CutoffOptions:
    return CutoffOptions(tuple(args.at) if args.at else None, args.yes, args.force)


def describe(change: CutoffChange) -> str:
    head = f"  partition {change.partition}: MACs required from offset {change.result:,}"
    if change.action == mac_cutoffs.RECORDED:
        return f"{head} (new)"
    if change.action == mac_cutoffs.UNCHANGED:
        return f"{head} (recorded before)"
    if change.action == mac_cutoffs.KEPT:
        why = (
            "moving it forward would accept later records without a MAC; --force moves it"
            if change.proposed > change.result
            else "give the offset with --at to move it back"
        )
        return f"{head} (recorded before and kept, not {change.proposed:,}: {why})"
    return f"{head} ({change.action} from {change.recorded:,})"


def again_command(cutoffs: Mapping[int, int]) -> str:
    at = " ".join(f"--at {p}={o}" for p, o in sorted(cutoffs.items()))
    return f"consent-ledger {COMMAND} --yes {at}"


async def require_record_macs(
    settings: Settings,
    conn: asyncpg.Connection,
    options: CutoffOptions,
    confirm: Callable[[list[CutoffChange]], bool],
) -> CutoffOutcome:
    """Plan the cut-offs, ask `confirm` when something would be written, then write them in
    one transaction (planned again there against what is recorded then)."""
    topic = settings.topic
    if options.at is not None and len(dict(options.at)) != len(options.at):
        raise ValueError("--at names a partition twice")
    ends = await highwaters(settings.kafka, topic)
    proposed = dict(ends) if options.at is None else dict(options.at)
    unknown = sorted(set(proposed) - set(ends))
    if unknown:
        raise ValueError(
            f"--at: topic {topic} has partitions 0-{max(ends)}, not {unknown[0]}"
            if ends
            else f"topic {topic} has no partitions"
        )
    beyond = [p for p, o in sorted(proposed.items()) if o > ends[p]]
    if beyond and not options.force:
        p = beyond[0]
        raise ValueError(
            f"--at {p}={proposed[p]}: partition {p} ends at offset {ends[p]}; a cut-off beyond"
            " the end would accept records not written yet without a MAC (--force allows it)"
        )
    explicit = options.at is not None
    outcome = CutoffOutcome(topic)
    outcome.changes = mac_cutoffs.plan(
        await mac_cutoffs.load(conn, topic), proposed, explicit=explicit, force=options.force
    )
    if any(c.writes for c in outcome.changes):
        if not (options.yes or confirm(outcome.changes)):
            return outcome
        async with conn.transaction():
            await mac_cutoffs.lock_for_change(conn)
            outcome.changes = mac_cutoffs.plan(
                await mac_cutoffs.load(conn, topic),
                proposed,
                explicit=explicit,
                force=options.force,
            )
            await mac_cutoffs.store(conn, topic, outcome.changes)
        outcome.written = True
    cutoffs = {c.partition: c.result for c in outcome.changes}
    outcome.refused_below = await mac_cutoffs.refused_below(conn, topic, cutoffs, UNAUTHENTICATED)
    return outcome


def ask(changes: list[CutoffChange]) -> bool:
    print("Records below these offsets will be applied without a MAC; from them on, every")
    print("record needs a valid MAC under a writer key:")
    for change in changes:
        print(describe(change))
    answer = input("Record these cut-offs? [y/N] ")
    return answer.strip().lower() in ("y", "yes")


def report(outcome: CutoffOutcome) -> str:
    lines = [f"consent-ledger {COMMAND}: topic {outcome.topic}"]
    lines += [describe(c) for c in outcome.changes]
    cutoffs = {c.partition: c.result for c in outcome.changes}
    lines.append(
        "Keep these offsets with the secrets: after losing the database, record them again"
        f" before the projector starts:\n  {again_command(cutoffs)}"
    )
    if outcome.refused_below:
        lines.append(
            f"{outcome.refused_below:,} record(s) below these offsets were refused as"
            f" {UNAUTHENTICATED}: `consent-ledger rebuild` applies them. Check first that they"
            " are the log written before record MACs (SELECT * FROM rejected_records WHERE"
            f" reason = '{UNAUTHENTICATED}'), not forgeries"
        )
    return "\n".join(lines)


async def run_require_record_macs(settings: Settings, options: CutoffOptions) -> int:
    name = f"consent-ledger {COMMAND}"
    if not options.yes and not sys.stdin.isatty():
        print(f"{name}: no terminal to confirm on; pass --yes to record", file=sys.stderr)
        return 2
    try:
        conn = await connect_database(settings)
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"{name}: cannot reach the database ({exc})", file=sys.stderr)
        return 1
    try:
        outcome = await require_record_macs(settings, conn, options, ask)
    except ValueError as exc:
        print(f"{name}: {exc}; nothing recorded", file=sys.stderr)
        return 2
    except (KafkaError, TimeoutError, OSError, asyncpg.PostgresError) as exc:
        print(f"{name}: failed ({exc}); nothing recorded", file=sys.stderr)
        return 1
    finally:
        await conn.close()
    if any(c.writes for c in outcome.changes) and not outcome.written:
        print(f"{name}: nothing recorded")
        return 1
    print(report(outcome))
    return 0
