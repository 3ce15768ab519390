"""`consent-ledger import FILE`: check the arguments and the file, record the rows in batches
with a progress bar, write the rejects file and print what happened.

Exit codes: 0 when the file was read to the end (rejected rows included), 2 for unusable
arguments or file, 1 when the servers failed (a re-run finishes the job; nothing twice).
"""

from __future__ import annotations

import contextlib
import csv
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Final

import asyncpg
from aiokafka.errors import KafkaError
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from services.bootstrap import Ledger, close_ledger, open_ledger
from services.config import Settings
from services.identity.identities import normalise_email
from services.importing.formats import HeaderError, ImportRow, RowProblem, read
from services.importing.record import (
    ALREADY,
    RECORDED,
    SUPERSEDED,
    SUPERSEDED_REASON,
    SUPPRESSED,
    SUPPRESSED_REASON,
    ImportStopped,
    Recorder,
    Target,
)
from services.rules.catalogue import Catalogue, CatalogueError, load_catalogue

#: rows per batch: looked up in one query each, then appended concurrently (acks awaited)
BATCH: Final = 500


class UsageError(Exception):
    """The arguments or the file cannot be used; nothing was recorded."""


@dataclass(frozen=True, slots=True)
class ImportOptions:
    path: Path
    format: str
    purpose: str
    channel: str
    rejects: Path | None = None
    progress: bool = True
    batch: int = BATCH

    @property
    def rejects_path(self) -> Path:
        return self.rejects or self.path.with_name(self.path.name + ".rejects.csv")


@dataclass(slots=True)
class Tally:
    read: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys((RECORDED, ALREADY), 0))
    rejected: int = 0
    superseded: int = 0
    suppressed: int = 0
    #: (line, reason): never a field's value
    rejects: list[tuple[int, str]] = field(default_factory=list)


def check_target(catalogue: Catalogue, purpose_id: str, channel: str) -> None:
    purpose = catalogue.get(purpose_id)
    if purpose is None:
        accepted = ", ".join(catalogue.ids)
        raise UsageError(f"--purpose {purpose_id!r} is not in the catalogue; accepted: {accepted}")
    if purpose.basis not in ("consent", "legitimate_interest"):
        raise UsageError(
            f"--purpose {purpose_id!r} rests on {purpose.basis}; an import records consent"
            " decisions, so only consent or legitimate-interest purposes are accepted"
        )
    if channel not in purpose.channels:
        raise UsageError(
            f"--channel {channel!r} is not a channel of {purpose_id!r}; accepted: "
            + ", ".join(purpose.channels)
        )


@contextlib.contextmanager
def _opened(path: Path) -> Iterator[IO[str]]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as stream:
            yield stream
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not UTF-8 text; save the export as UTF-8") from None


def count_records(options: ImportOptions, now: datetime) -> int:
    """A first pass: checks the header and the encoding before anything is sent."""
    with _opened(options.path) as stream:
        return sum(1 for _ in read(options.format, stream, now=now, check_email=normalise_email))


class RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} rows/s" if speed else "- rows/s", style="progress.data.speed")


def _progress(options: ImportOptions) -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        disable=not options.progress or not sys.stdout.isatty(),
    )


def prepare(catalogue: Catalogue, options: ImportOptions) -> int:
    """Check the target and the file; returns how many records the file holds."""
    check_target(catalogue, options.purpose, options.channel)
    return count_records(options, datetime.now(UTC))


async def run_import(settings: Settings, options: ImportOptions) -> int:
    try:  # before reaching any server: the arguments against the file's catalogue, the export
        total = prepare(load_catalogue(settings.catalogue_file), options)
    except (UsageError, HeaderError, CatalogueError) as exc:
        print(f"consent-ledger import: {exc}", file=sys.stderr)
        return 2
    try:
        ledger = await open_ledger(settings)
    except (OSError, TimeoutError, asyncpg.PostgresError, KafkaError) as exc:
        hint = ""
        if settings.kafka_idempotence and isinstance(exc, KafkaError):
            hint = "; a broker without idempotent producers (make up's) needs"
            hint += " LEDGER_KAFKA_IDEMPOTENCE=false"
        print(f"consent-ledger import: cannot reach the servers ({exc}){hint}", file=sys.stderr)
        return 1
    try:
        # then the log's catalogue, which is the truth: a purpose retired or changed since the
        # catalogue file was written is checked as it stands now
        check_target(ledger.catalogue, options.purpose, options.channel)
    except UsageError as exc:
        await close_ledger(ledger)
        print(f"consent-ledger import: {exc}", file=sys.stderr)
        return 2
    try:
        return await import_file(ledger, options, total)
    finally:
        await close_ledger(ledger)


async def import_file(ledger: Ledger, options: ImportOptions, total: int) -> int:
    """Record a prepared file; 0 when read to the end, 1 when the servers failed."""
    tally = Tally()
    target = Target(options.format, options.purpose, options.channel)
    stopped: str | None = None
    try:
        with _progress(options) as progress:
            task = progress.add_task(options.path.name, total=total)
            stopped = await _import(Recorder(ledger, target), options, tally, progress, task)
    except (UsageError, HeaderError) as exc:  # the file changed since it was prepared
        stopped = str(exc)
    _write_rejects(options.rejects_path, tally.rejects)
    _summary(options, tally)
    if stopped is not None:
        print(
            f"consent-ledger import: stopped: {stopped}. Run the same command again to finish;"
            " rows already recorded are not recorded twice.",
            file=sys.stderr,
        )
        return 1
    return 0


async def _import(
    recorder: Recorder, options: ImportOptions, tally: Tally, progress: Progress, task: TaskID
) -> str | None:
    """Reads and records the whole file; returns why it stopped early, or None."""
    batch: list[ImportRow] = []

    async def flush() -> None:
        for row, outcome in await recorder.record(batch):
            if outcome == SUPERSEDED:
                tally.superseded += 1
                tally.rejects.append((row.line, SUPERSEDED_REASON))
            elif outcome == SUPPRESSED:
                tally.suppressed += 1
                tally.rejects.append((row.line, SUPPRESSED_REASON))
            else:
                tally.counts[outcome] += 1
        progress.advance(task, len(batch))
        batch.clear()

    now = datetime.now(UTC)
    with _opened(options.path) as stream:
        try:
            for result in read(options.format, stream, now=now, check_email=normalise_email):
                tally.read += 1
                if isinstance(result, RowProblem):
                    tally.rejected += 1
                    tally.rejects.append((result.line, result.reason))
                    progress.advance(task)
                    continue
                batch.append(result)
                if len(batch) >= options.batch:
                    await flush()
            if batch:
                await flush()
        except ImportStopped as exc:
            return str(exc)
    return None


def _write_rejects(path: Path, rejects: list[tuple[int, str]]) -> None:
    """Line and reason only: the rejects file must not become another copy of the list."""
    if not rejects:
        return
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["line", "reason"])
        writer.writerows(sorted(rejects))


def _summary(options: ImportOptions, tally: Tally) -> None:
    lines = [
        f"{options.path.name}: {tally.read} rows read"
        f" (format {options.format}, purpose {options.purpose}, channel {options.channel})",
        f"  recorded          {tally.counts[RECORDED]}",
        f"  already recorded  {tally.counts[ALREADY]}",
        f"  superseded        {tally.superseded}   (the ledger holds a later decision)",
        f"  suppressed        {tally.suppressed}   (addresses of erased subjects, not imported)",
        f"  rejected          {tally.rejected}",
    ]
    if tally.rejects:
        lines.append(f"  rejects file      {options.rejects_path}   (line, reason)")
    print("\n".join(lines))
