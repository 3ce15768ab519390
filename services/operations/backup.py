"""`consent-ledger backup FILE`: the event topic and the contact-check topic, every record from
each partition's start up to the high-water marks seen when the backup starts, into one Avro
object container file (services/operations/backup_format.py).

The high-water marks come from fetch responses (`consumer.highwater`), not ListOffsets. The
file is written beside its final name, fsynced, then renamed into place, so FILE is either
absent or complete. Exit codes: 0 written, 1 the broker failed, 2 unusable arguments (FILE
exists, a topic is missing).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import IO, Any, Final

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from fastavro.write import Writer

from services.bootstrap import operator_consumer
from services.config import Settings
from services.ledger.topic import highwaters, partition_count
from services.operations.backup_format import (
    CODEC,
    PARSED_SCHEMA,
    BackupHeader,
    LogRecord,
    TopicExtent,
)
from services.operations.progress_bar import record_progress

#: longest wait for the next record of a range the broker said it holds
STALL_S: Final = 30.0
#: bytes per Avro block: larger blocks compress better
SYNC_INTERVAL: Final = 1 << 20


class BackupError(Exception):
    """The backup cannot be made as asked; nothing was written at FILE."""


class LogReadError(Exception):
    """The broker did not return the records it said it holds; nothing was written at FILE."""


@dataclass(slots=True)
class BackupSummary:
    path: Path
    header: BackupHeader
    records: dict[str, int] = field(default_factory=dict)
    size: int = 0


def ledger_version() -> str:
    try:
        return metadata.version("consent-ledger")
    except metadata.PackageNotFoundError:
        return "unknown"


def backed_up_topics(settings: Settings) -> list[tuple[str, str]]:
    """(role, topic): the event log and the contact-check evidence, neither derivable from
    anything else. The state topic is republished from the projections, and the checkpoint
    topic is evidence an auditor keeps outside the ledger (`checkpoint-verify --save`)."""
    return [("events", settings.topic), ("checks", settings.checks_topic)]


async def _fetch(
    consumer: AIOKafkaConsumer, tp: TopicPartition, position: int, end: int
) -> list[Any]:
    """The next records of `tp` from `position`; waits up to STALL_S for the range to go on."""
    deadline = time.monotonic() + STALL_S
    while True:
        fetched = await consumer.getmany(tp, timeout_ms=500, max_records=2000)
        messages = fetched.get(tp, [])
        if messages:
            return list(messages)
        highwater = consumer.highwater(tp)
        if highwater is not None and highwater <= position:
            raise LogReadError(
                f"{tp.topic}[{tp.partition}] ends at offset {highwater}, before the high-water"
                f" mark {end} seen when the backup started"
            )
        if time.monotonic() > deadline:
            raise LogReadError(f"no records of {tp.topic}[{tp.partition}] from offset {position}")


async def first_offset(consumer: AIOKafkaConsumer, topic: str, partition: int, end: int) -> int:
    """The offset of the partition's first record (`end` when it holds none below `end`)."""
    if end == 0:
        return 0
    tp = TopicPartition(topic, partition)
    consumer.assign([tp])
    await consumer.seek_to_beginning(tp)
    first: int = (await _fetch(consumer, tp, 0, end))[0].offset
    return min(end, first)


async def partition_records(
    consumer: AIOKafkaConsumer, topic: str, partition: int, start: int, end: int
) -> AsyncIterator[Any]:
    """The records of one partition in [start, end)."""
    tp = TopicPartition(topic, partition)
    consumer.assign([tp])
    consumer.seek(tp, start)
    position = start
    while position < end:
        for message in await _fetch(consumer, tp, position, end):
            if message.offset >= end:
                return
            yield message
            position = message.offset + 1


async def read_extents(settings: Settings, consumer: AIOKafkaConsumer) -> list[TopicExtent]:
    """Each topic's high-water marks, then where each partition starts (its first record)."""
    marks: dict[str, dict[int, int]] = {}
    for _, topic in backed_up_topics(settings):
        if await partition_count(settings.kafka, topic) is None:
            raise BackupError(f"topic {topic} does not exist; run `consent-ledger init`")
        marks[topic] = await highwaters(settings.kafka, topic)
    extents = []
    for role, topic in backed_up_topics(settings):
        ends = tuple(marks[topic][p] for p in sorted(marks[topic]))
        starts = tuple([await first_offset(consumer, topic, p, end) for p, end in enumerate(ends)])
        extents.append(TopicExtent(role, topic, starts, ends))
    return extents


def to_record(message: Any) -> LogRecord:
    """A consumed aiokafka record as it goes into the file, bytes untouched."""
    return LogRecord(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        timestamp=message.timestamp,
        key=message.key,
        value=message.value,
        headers=tuple((k, v) for k, v in message.headers or ()),
    )


async def write_records(
    consumer: AIOKafkaConsumer,
    header: BackupHeader,
    out: IO[bytes],
    advance: Callable[[int], None],
) -> dict[str, int]:
    """Every record of the header's extents into `out`; returns the count per topic."""
    writer = Writer(
        out, PARSED_SCHEMA, codec=CODEC, sync_interval=SYNC_INTERVAL, metadata=header.metadata()
    )
    counts: dict[str, int] = {}
    for extent in header.topics:
        counts[extent.topic] = 0
        for partition, (start, end) in enumerate(
            zip(extent.start_offsets, extent.end_offsets, strict=True)
        ):
            async for message in partition_records(consumer, extent.topic, partition, start, end):
                writer.write(to_record(message).as_avro())
                counts[extent.topic] += 1
                advance(1)
    writer.flush()
    return counts


def backup_directory(path: Path) -> Path:
    """The directory FILE goes into; BackupError when FILE exists or the directory does not."""
    if path.exists():
        raise BackupError(f"{path} exists; not overwritten (remove it or choose another name)")
    directory = path.resolve().parent
    if not directory.is_dir():
        raise BackupError(f"directory {directory} does not exist")
    return directory


def move_into_place(temporary: str, path: Path, directory: Path) -> int:
    """Rename the fsynced temporary file to `path` and fsync the directory; returns the size."""
    os.replace(temporary, path)
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return path.stat().st_size


async def write_backup(settings: Settings, path: Path, *, progress: bool) -> BackupSummary:
    """Write the backup to a temporary file (mode 0600) beside `path`, fsync it and rename it
    to `path`."""
    directory = backup_directory(path)
    async with operator_consumer(settings, enable_auto_commit=False) as consumer:
        header = BackupHeader(
            datetime.now(UTC), ledger_version(), tuple(await read_extents(settings, consumer))
        )
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=directory)
        try:
            with os.fdopen(fd, "wb") as out, record_progress(progress) as bar:
                task = bar.add_task(path.name, total=sum(t.span for t in header.topics))
                counts = await write_records(consumer, header, out, lambda n: bar.advance(task, n))
                out.flush()
                os.fsync(out.fileno())
            size = move_into_place(temporary, path, directory)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
    return BackupSummary(path, header, counts, size)


def report(summary: BackupSummary) -> str:
    parts = [
        f"{t.topic} ({t.role}, {t.partitions} partitions): {summary.records[t.topic]:,} records"
        for t in summary.header.topics
    ]
    return f"backup: wrote {summary.path} ({summary.size:,} bytes): " + "; ".join(parts)


async def run_backup(settings: Settings, path: Path, *, progress: bool = True) -> int:
    try:
        summary = await write_backup(settings, path, progress=progress)
    except BackupError as exc:
        print(f"consent-ledger backup: {exc}", file=sys.stderr)
        return 2
    except (KafkaError, TimeoutError, LogReadError) as exc:
        print(f"consent-ledger backup: the broker failed ({exc}); no file written", file=sys.stderr)
        return 1
    except OSError as exc:
        print(
            f"consent-ledger backup: writing {path} failed ({exc}); no file written",
            file=sys.stderr,
        )
        return 1
    print(report(summary))
    return 0
