"""The `consent-ledger rebuild` command: a progress bar while it replays, the report after the
switch, and exit codes (the work itself: services/operations/rebuild.py)."""

from __future__ import annotations

import sys

import asyncpg
from aiokafka.errors import KafkaError
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from projections.rebuild_schema import RebuildError, SwitchNotNow
from services.config import Settings
from services.operations.rebuild import Outcome, RebuildOptions, drop_previous, rebuild


def summary(outcome: Outcome) -> str:
    rate = outcome.replayed / outcome.seconds if outcome.seconds > 0 else 0.0
    verb = "rolled back" if outcome.rollback else "rebuilt"
    lines = [
        f"rebuild: {verb} and switched: {outcome.replayed:,} records replayed in"
        f" {outcome.seconds:,.1f}s ({rate:,.0f} events/s), switch attempts: {outcome.attempts}",
        f"rebuild: the replaced tables are kept in schema {outcome.previous}"
        " (undo: consent-ledger rebuild --rollback; free: consent-ledger rebuild --drop-previous)",
        f"rebuild: state feed: {outcome.queued:,} subjects queued to be published again",
    ]
    if outcome.purged:
        lines.append(f"rebuild: {outcome.purged:,} erased subjects' purged proof stays purged")
    if outcome.digests_differ:
        parts = ", ".join(str(p) for p in outcome.digests_differ)
        lines.append(
            f"rebuild: WARNING: the replayed checkpoint digests differ from the live ones on"
            f" partition(s) {parts}; the live checkpoints continue unchanged. Run"
            " `consent-ledger checkpoint-verify` (a digest started after the log's beginning,"
            " by an upgrade, also differs)"
        )
    else:
        lines.append(
            f"rebuild: checkpoint digests: the replay's equal the live ones on all"
            f" {outcome.digests_agree} partition(s)"
        )
    return "\n".join(lines)


class RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(
            f"{speed:,.0f} events/s" if speed else "- events/s", style="progress.data.speed"
        )


async def run_rebuild(settings: Settings, options: RebuildOptions, *, drop: bool = False) -> int:
    """The command: 0 switched (or dropped), 1 the servers failed, 2 refused; the live tables
    are untouched unless it says it switched."""
    try:
        if drop:
            dropped = await drop_previous(settings)
            print(
                f"rebuild: dropped {len(dropped)} schema(s) of replaced tables: "
                + (", ".join(dropped) or "none kept")
            )
            return 0
        with Progress(
            TextColumn("replaying" if not options.rollback else "catching up"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("records"),
            RateColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            disable=not options.progress or not sys.stdout.isatty(),
        ) as bar:
            task = bar.add_task("log", total=None)

            def advance(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            outcome = await rebuild(settings, options, advance)
    except RebuildError as exc:
        print(f"consent-ledger rebuild: {exc}", file=sys.stderr)
        return 2
    except SwitchNotNow as exc:
        print(f"consent-ledger rebuild: {exc}", file=sys.stderr)
        return 1
    except (
        OSError,
        TimeoutError,
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
        KafkaError,
    ) as exc:
        print(
            f"consent-ledger rebuild: the servers failed ({type(exc).__name__}: {exc});"
            " nothing was switched",
            file=sys.stderr,
        )
        return 1
    print(summary(outcome))
    return 0
