"""`consent-ledger checkpoint-verify`: prove the event log was not rewritten since checkpoints
were taken.

Reads the checkpoints from the checkpoint topic, or from a JSON-lines file an auditor kept
outside the ledger (`--checkpoints`), and recomputes each digest from the event topic
(`--source topic`, the default) or from the database (`--source journal`: the journal, the
skipped duplicates and the undecodable records). `--save` writes the checkpoints read as JSON
lines, for keeping. Exit codes: 0 every checkpoint holds, 1 a checkpoint does not, 2 the input
or the servers could not be used.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from projections import log_digest
from schemas.checkpoint_codec import LogCheckpoint, decode_checkpoint
from schemas.codec import CodecError
from services.bootstrap import operator_consumer, operator_database
from services.config import Settings
from services.ledger.topic import highwaters
from services.proof.checkpoint_check import (
    Finding,
    RangeChecker,
    by_partition,
    lanes,
    link_findings,
)

SOURCES: Final = ("topic", "journal")
#: longest wait for the next record of a range the topic should hold
_STALL_S: Final = 30.0


class CheckpointInputError(Exception):
    """The checkpoints cannot be read; the message names the file and line or the topic."""


@dataclass(frozen=True, slots=True)
class Options:
    source: str = "topic"
    checkpoints: Path | None = None
    save: Path | None = None


def required_servers(options: Options) -> tuple[str, ...]:
    """The settings a run needs: the broker to read checkpoints or records from the topics,
    the database to recompute from the journal."""
    out = []
    if options.checkpoints is None or options.source == "topic":
        out.append("KAFKA_BOOTSTRAP_SERVERS")
    if options.source == "journal":
        out.append("DATABASE_URL")
    return tuple(out)


def read_file(path: Path) -> list[LogCheckpoint]:
    out = []
    try:
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    out.append(LogCheckpoint.from_json(json.loads(line)))
                except (ValueError, CodecError) as exc:
                    raise CheckpointInputError(f"{path}:{number}: {exc}") from None
    except OSError as exc:
        raise CheckpointInputError(f"cannot read {path}: {exc.strerror or exc}") from None
    return out


def save_file(path: Path, checkpoints: list[LogCheckpoint]) -> None:
    with path.open("w", encoding="utf-8") as out:
        for checkpoint in checkpoints:
            out.write(json.dumps(checkpoint.as_json(), separators=(",", ":")) + "\n")


async def read_topic(settings: Settings) -> tuple[list[LogCheckpoint], int]:
    """Every checkpoint on the checkpoint topic, and how many records did not decode."""
    try:
        marks = await highwaters(settings.kafka, settings.checkpoints_topic)
    except TimeoutError as exc:
        raise CheckpointInputError(str(exc)) from None
    found: list[LogCheckpoint] = []
    undecodable = 0
    async with operator_consumer(settings, enable_auto_commit=False) as consumer:
        for partition, end in marks.items():
            async for _, value in _records(consumer, settings.checkpoints_topic, partition, 0, end):
                try:
                    found.append(decode_checkpoint(value or b""))
                except CodecError:
                    undecodable += 1
    return found, undecodable


async def _records(
    consumer: AIOKafkaConsumer, topic: str, partition: int, start: int, end: int
) -> AsyncIterator[tuple[int, bytes | None]]:
    """(offset, value) of the records in [start, end), until the log ends."""
    tp = TopicPartition(topic, partition)
    consumer.assign([tp])
    consumer.seek(tp, start)
    position = start
    last_progress = time.monotonic()
    while position < end:
        fetched = await consumer.getmany(tp, timeout_ms=500, max_records=2000)
        messages = fetched.get(tp, [])
        if not messages:
            highwater = consumer.highwater(tp)
            if highwater is not None and highwater <= position:
                return  # the log ends before the range does
            if time.monotonic() - last_progress > _STALL_S:
                raise TimeoutError(f"no records of {topic}[{partition}] from offset {position}")
            continue
        last_progress = time.monotonic()
        for message in messages:
            if message.offset >= end:
                return
            yield message.offset, message.value
            position = message.offset + 1


async def check_from_topic(
    settings: Settings, partitions: dict[int, list[LogCheckpoint]]
) -> list[Finding]:
    findings: list[Finding] = []
    async with operator_consumer(settings, enable_auto_commit=False) as consumer:
        for partition, checkpoints in partitions.items():
            for lane in lanes(checkpoints):
                checker = RangeChecker(lane)
                async for offset, value in _records(
                    consumer, settings.topic, partition, checker.start, checker.end
                ):
                    checker.feed(offset, value)
                findings += checker.finish() + link_findings(lane)
    return findings


async def check_from_journal(
    settings: Settings, partitions: dict[int, list[LogCheckpoint]]
) -> list[Finding]:
    findings: list[Finding] = []
    async with (
        operator_database(settings) as conn,
        conn.transaction(isolation="repeatable_read", readonly=True),
    ):
        for partition, checkpoints in partitions.items():
            for lane in lanes(checkpoints):
                checker = RangeChecker(lane)
                async for offset, value in log_digest.stored_records(
                    conn, settings.topic, partition, checker.start, checker.end
                ):
                    checker.feed(offset, value)
                findings += checker.finish() + link_findings(lane)
    return findings


def report(
    topic: str, source: str, partitions: dict[int, list[LogCheckpoint]], findings: list[Finding]
) -> tuple[str, bool]:
    bad = [f for f in findings if not f.ok]
    total = sum(len(c) for c in partitions.values())
    lines = []
    for partition, checkpoints in partitions.items():
        failed = [f for f in bad if f.checkpoint.partition == partition]
        span = f"offsets {checkpoints[0].from_offset}-{max(c.to_offset for c in checkpoints)}"
        verdict = "ok" if not failed else f"{len(failed)} FAILED"
        lines.append(f"  partition {partition}: {len(checkpoints)} checkpoints, {span}: {verdict}")
        for finding in failed:
            c = finding.checkpoint
            lines.append(
                f"    [{c.from_offset}, {c.to_offset}) created {c.created_at.isoformat()}:"
                f" {finding.status}: {finding.detail}"
            )
    head = f"checkpoint-verify: {total} checkpoints of {topic}, recomputed from the {source}: "
    head += "every digest holds" if not bad else f"{len(bad)} problems"
    return "\n".join([head, *lines]), not bad


async def run_checkpoint_verify(settings: Settings, options: Options) -> int:
    try:
        if options.checkpoints is not None:
            checkpoints, undecodable = read_file(options.checkpoints), 0
        else:
            checkpoints, undecodable = await read_topic(settings)
    except CheckpointInputError as exc:
        print(f"consent-ledger checkpoint-verify: {exc}", file=sys.stderr)
        return 2
    except (OSError, KafkaError) as exc:
        print(
            f"consent-ledger checkpoint-verify: cannot read the checkpoints ({exc})",
            file=sys.stderr,
        )
        return 2
    if options.save is not None:
        save_file(options.save, checkpoints)
    partitions = by_partition(checkpoints, settings.topic)
    if undecodable:
        print(f"checkpoint-verify: {undecodable} records of the checkpoint topic did not decode")
    if not partitions:
        print(f"checkpoint-verify: no checkpoints of {settings.topic} to verify")
        return 1 if undecodable else 0
    check = check_from_topic if options.source == "topic" else check_from_journal
    try:
        findings = await check(settings, partitions)
    except (OSError, KafkaError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        print(
            f"consent-ledger checkpoint-verify: reading the records failed ({exc})", file=sys.stderr
        )
        return 2
    text, ok = report(settings.topic, options.source, partitions, findings)
    print(text)
    return 0 if ok and not undecodable else 1
