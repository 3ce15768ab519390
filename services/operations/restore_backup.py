"""`consent-ledger restore FILE`: produce a backup's records back into empty topics, each record
to the partition it came from, in the file's order (which is each partition's offset order).

The events go to LEDGER_TOPIC and the contact checks to LEDGER_CHECKS_TOPIC (`--only` picks
one). Every target must exist with the backup's partition count (`--create-topic` creates a
missing one) and be empty; otherwise nothing is written. The producer uses acks=all and
LEDGER_KAFKA_IDEMPOTENCE. Afterwards each partition's high-water mark must equal the records
restored to it. Exit codes: 0 restored and verified, 1 the broker failed or the verification
did not hold, 2 unusable file or arguments, or a target refused (nothing written).
"""

from __future__ import annotations

import sys
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka.errors import KafkaError
from fastavro import reader

from services.bootstrap import operator_producer
from services.config import Settings
from services.ledger.topic import create_log_topic, highwaters, partition_count
from services.operations.backup_format import (
    BackupFileError,
    BackupHeader,
    LogRecord,
    TopicExtent,
    check_record,
    count_mismatches,
    read_header,
    roles_to_restore,
    target_problems,
)
from services.operations.log_writer import OffsetMismatch, OrderedWriter
from services.operations.progress_bar import record_progress


class RestoreRefused(Exception):
    """A target topic cannot take the backup; nothing was written."""


class RestoreFailed(Exception):
    """Records were written but the restore did not finish or did not verify."""


@dataclass(frozen=True, slots=True)
class RestoreOptions:
    path: Path
    only: tuple[str, ...] = ()
    create_topic: bool = False
    progress: bool = True


@dataclass(slots=True)
class TopicRestore:
    extent: TopicExtent
    target: str
    #: records per partition
    restored: dict[int, int] = field(default_factory=dict)
    #: records that landed at another offset than in the backed-up log (a log with gaps)
    moved: int = 0


def target_topics(settings: Settings) -> dict[str, str]:
    """Where each role of a backup goes."""
    return {"events": settings.topic, "checks": settings.checks_topic}


def _records(path: Path) -> Iterator[tuple[BackupHeader, LogRecord | None]]:
    """The header, then each record with it; BackupFileError for anything unreadable."""
    try:
        with path.open("rb") as stream:
            avro = reader(stream)
            header = read_header(avro.metadata)
            yield header, None
            for raw in avro:
                if not isinstance(raw, dict):
                    raise BackupFileError(f"{path} holds a record that is not a LogRecord")
                yield header, LogRecord.from_avro(raw)
    except OSError as exc:
        raise BackupFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (ValueError, EOFError, KeyError, zlib.error) as exc:  # fastavro's, for a bad file
        raise BackupFileError(
            f"{path} is not a readable Avro object container file ({exc!r})"
        ) from None


def scan_backup(path: Path) -> tuple[BackupHeader, dict[str, int]]:
    """Read the whole file once before anything is written: its header, and its record count
    per topic, every record checked against the header."""
    header: BackupHeader | None = None
    counts: dict[str, int] = {}
    for header, record in _records(path):
        if record is not None:
            topic = check_record(header, record).topic
            counts[topic] = counts.get(topic, 0) + 1
    if header is None:
        raise BackupFileError(f"{path} has no header")
    return header, counts


def backup_records(path: Path) -> Iterator[tuple[TopicExtent, LogRecord]]:
    """The file's records in order, each with the extent it belongs to."""
    for header, record in _records(path):
        if record is not None:
            yield check_record(header, record), record


async def prepare_targets(
    settings: Settings, extents: Sequence[TopicExtent], create: bool
) -> list[TopicRestore]:
    """Check every target first, then create the missing ones if asked; RestoreRefused lists
    every problem."""
    names = target_topics(settings)
    problems: list[str] = []
    missing: list[TopicExtent] = []
    for extent in extents:
        target = names[extent.role]
        count = await partition_count(settings.kafka, target)
        if count is None and create:
            missing.append(extent)
            continue
        marks = {} if count is None else await highwaters(settings.kafka, target)
        problems += target_problems(extent, target, count, marks)
    if problems:
        raise RestoreRefused("; ".join(problems))
    for extent in missing:
        await create_log_topic(settings, names[extent.role], extent.partitions)
    return [TopicRestore(extent, names[extent.role]) for extent in extents]


async def restore_file(settings: Settings, options: RestoreOptions) -> list[TopicRestore]:
    header, counts = scan_backup(options.path)
    extents = roles_to_restore(header, options.only)
    plans = await prepare_targets(settings, extents, options.create_topic)
    by_topic = {plan.extent.topic: plan for plan in plans}
    async with operator_producer(settings) as producer:
        try:
            writers = {t: OrderedWriter(producer, plan.target) for t, plan in by_topic.items()}
            with record_progress(options.progress) as bar:
                task = bar.add_task(
                    options.path.name, total=sum(counts.get(e.topic, 0) for e in extents)
                )
                for extent, record in backup_records(options.path):
                    plan = by_topic.get(extent.topic)
                    if plan is None:
                        continue  # a role not asked for
                    landing = plan.restored.get(record.partition, 0)
                    plan.restored[record.partition] = landing + 1
                    plan.moved += landing != record.offset
                    written = await writers[extent.topic].write(
                        record.partition, record.key, record.value, record.headers, record.timestamp
                    )
                    bar.advance(task, written)
                for writer in writers.values():
                    bar.advance(task, await writer.flush())
        except OffsetMismatch as exc:
            raise RestoreFailed(str(exc)) from None
    for plan in plans:
        marks = await highwaters(settings.kafka, plan.target)
        wrong = count_mismatches(plan.restored, marks)
        if wrong:
            listed = ", ".join(
                f"partition {p}: {n} restored, high-water mark {h}" for p, n, h in wrong
            )
            raise RestoreFailed(f"topic {plan.target} does not hold what was restored: {listed}")
    return plans


def report(plans: Sequence[TopicRestore]) -> str:
    lines = []
    for plan in plans:
        total = sum(plan.restored.values())
        offsets = (
            "every record at its original offset"
            if not plan.moved
            else f"{plan.moved:,} records at other offsets than in the backed-up log (it had gaps)"
        )
        lines.append(
            f"restore: {plan.extent.topic} -> {plan.target}: {total:,} records into"
            f" {plan.extent.partitions} partitions, {offsets}; high-water marks verified"
        )
    return "\n".join(lines)


async def run_restore(settings: Settings, options: RestoreOptions) -> int:
    try:
        plans = await restore_file(settings, options)
    except (BackupFileError, RestoreRefused) as exc:
        print(f"consent-ledger restore: {exc}; nothing restored", file=sys.stderr)
        return 2
    except (RestoreFailed, KafkaError, TimeoutError, OSError) as exc:
        print(
            f"consent-ledger restore: failed ({exc}). The target topics may hold part of the"
            " backup: delete and recreate them, then restore again",
            file=sys.stderr,
        )
        return 1
    print(report(plans))
    return 0
