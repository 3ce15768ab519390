"""The event topic: created explicitly with its production settings, and its high-water marks.

Every start (`init`, `up`) also describes the ledger's topics and reports each way one is
weaker than these settings (services/ledger/topic_check.py): a warning, or with
LEDGER_TOPIC_CHECK=refuse an error that stops the start.

High-water marks come from fetch responses (`consumer.highwater`), not ListOffsets, which some
Kafka-protocol brokers answer wrongly after multi-record batches.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Final

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError

from services.config import Settings
from services.kafka_access import KafkaAccess
from services.ledger.kafka_clients import new_admin, new_consumer
from services.ledger.topic_check import DescribedTopic, topic_weaknesses

log = logging.getLogger(__name__)


def topic_configs(settings: Settings) -> dict[str, str]:
    """Infinite retention, deletion (never compaction): the log is the system of record. No
    unclean leader election: an out-of-sync replica never becomes leader and drops events."""
    return {
        "retention.ms": "-1",
        "retention.bytes": "-1",
        "cleanup.policy": "delete",
        "min.insync.replicas": str(settings.topic_min_insync_replicas),
        "unclean.leader.election.enable": "false",
    }


def dead_letter_topic_configs(settings: Settings) -> dict[str, str]:
    """Like the event topic, but records expire after LEDGER_DEAD_LETTER_RETENTION_DAYS: a
    dead letter is a foreign record that may carry personal data erasure cannot reach."""
    days_ms = settings.dead_letter_retention_days * 86_400_000
    return {**topic_configs(settings), "retention.ms": str(days_ms)}


#: what a dead-letter topic kept for another period than the setting costs
DEAD_LETTER_RETENTION_COST: Final = (
    "dead letters (foreign records that may hold personal data) are not kept for"
    " LEDGER_DEAD_LETTER_RETENTION_DAYS: set the topic's retention.ms to it"
)


def state_topic_configs(settings: Settings) -> dict[str, str]:
    """Compaction: the state feed keeps the latest record per subject, not the history."""
    return {
        "cleanup.policy": "compact",
        "min.insync.replicas": str(settings.topic_min_insync_replicas),
        "unclean.leader.election.enable": "false",
    }


class WeakTopicError(RuntimeError):
    """A topic is weaker than the settings require, and LEDGER_TOPIC_CHECK=refuse."""


def required_configs(settings: Settings) -> dict[str, dict[str, str]]:
    """Each of the ledger's topics and the configs it must keep."""
    return {
        settings.topic: topic_configs(settings),
        settings.state_topic: state_topic_configs(settings),
        settings.checks_topic: topic_configs(settings),
        settings.checkpoints_topic: topic_configs(settings),
        settings.dead_letter_topic: dead_letter_topic_configs(settings),
    }


async def _replicas(
    admin: AIOKafkaAdminClient, names: list[str], timeout_s: float = 10.0
) -> dict[str, int]:
    """Each topic's fewest distinct replicas of a partition; a topic created a moment ago may
    need a moment to reach every broker's metadata, so wait for it (bounded)."""
    deadline = time.monotonic() + timeout_s
    while True:
        known = {
            t["topic"]: min(len(set(p["replicas"])) for p in t["partitions"])
            for t in await admin.describe_topics(names)
            if not t["error_code"] and t["partitions"]
        }
        if len(known) == len(names) or time.monotonic() > deadline:
            return known
        await asyncio.sleep(0.1)


async def describe(admin: AIOKafkaAdminClient, names: list[str]) -> list[DescribedTopic]:
    """The topics' configs and fewest distinct replicas, as the broker reports them."""
    replicas = await _replicas(admin, names)
    resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
    configs: dict[str, dict[str, str]] = {name: {} for name in names}
    for response in await admin.describe_configs(resources):
        for resource in response.to_object()["resources"]:
            if resource["error_code"]:
                continue  # reported as every config missing
            configs[resource["resource_name"]] = {
                e["config_names"]: e["config_value"]
                for e in resource["config_entries"]
                if e["config_value"] is not None
            }
    return [DescribedTopic(name, configs[name], replicas.get(name, 0)) for name in names]


async def check_topics(admin: AIOKafkaAdminClient, settings: Settings) -> list[str]:
    """Log each way a ledger topic is weaker than required; raise WeakTopicError for any with
    LEDGER_TOPIC_CHECK=refuse. Returns the weaknesses found."""
    required = required_configs(settings)
    costs = {settings.dead_letter_topic: {"retention.ms": DEAD_LETTER_RETENTION_COST}}
    try:
        described = await describe(admin, list(required))
        found = [
            weakness
            for topic in described
            for weakness in topic_weaknesses(
                topic,
                required[topic.name],
                settings.topic_replication,
                costs.get(topic.name, {}),
            )
        ]
    except KafkaError as exc:
        found = [f"cannot describe the topics' configs ({exc!r}); nothing shows they are safe"]
    for weakness in found:
        log.warning("%s", weakness)
    if found and settings.topic_check == "refuse":
        raise WeakTopicError(
            f"{len(found)} topic setting(s) weaker than required (LEDGER_TOPIC_CHECK=refuse):"
            f" {'; '.join(found)}"
        )
    return found


async def _create_missing(admin: AIOKafkaAdminClient, topic: NewTopic, what: str) -> bool:
    """Create `topic` unless it exists; True when created now (another process may race us)."""
    if topic.name in await admin.list_topics():
        return False
    response = await admin.create_topics([topic])
    for _, code, message in response.topic_errors:
        if code not in (0, 36):  # 36: created meanwhile by another process
            raise RuntimeError(f"cannot create topic {topic.name}: {message} ({code})")
    log.info("created the %s %s", what, topic.name)
    return True


#: partitions of the checks topic: it is keyed by campaign and written once per batch check
CHECKS_TOPIC_PARTITIONS = 3
#: partitions of the checkpoint topic: one, so all of a ledger's checkpoints are in one order
CHECKPOINTS_TOPIC_PARTITIONS = 1
#: partitions of the dead-letter topic: one, as dead letters are rare and read in one order
DEAD_LETTER_TOPIC_PARTITIONS = 1


def _side_topics(settings: Settings) -> list[tuple[NewTopic, str]]:
    """The state feed (compacted), the contact-check and checkpoint topics (kept forever like
    the events, never compacted) and the dead-letter topic (never compacted, kept for
    LEDGER_DEAD_LETTER_RETENTION_DAYS)."""
    replication = settings.topic_replication
    return [
        (
            NewTopic(
                settings.state_topic,
                settings.topic_partitions,
                replication,
                topic_configs=state_topic_configs(settings),
            ),
            "compacted state topic",
        ),
        (
            NewTopic(
                settings.checks_topic,
                CHECKS_TOPIC_PARTITIONS,
                replication,
                topic_configs=topic_configs(settings),
            ),
            "contact-check topic",
        ),
        (
            NewTopic(
                settings.checkpoints_topic,
                CHECKPOINTS_TOPIC_PARTITIONS,
                replication,
                topic_configs=topic_configs(settings),
            ),
            "checkpoint topic",
        ),
        (
            NewTopic(
                settings.dead_letter_topic,
                DEAD_LETTER_TOPIC_PARTITIONS,
                replication,
                topic_configs=dead_letter_topic_configs(settings),
            ),
            "dead-letter topic",
        ),
    ]


async def ensure_topic(settings: Settings) -> bool:
    """Create the event topic (and the state, checks, checkpoint and dead-letter topics) unless
    it exists, then check them all (check_topics); True when the event topic was created now."""
    admin = new_admin(settings.kafka)
    await admin.start()
    try:
        created = await _ensure_topics(admin, settings)
        await check_topics(admin, settings)
        return created
    finally:
        await admin.close()


async def _ensure_topics(admin: AIOKafkaAdminClient, settings: Settings) -> bool:
    """Create what is missing; True when the event topic was created now."""
    for side, what in _side_topics(settings):
        await _create_missing(admin, side, what)
    if settings.topic in await admin.list_topics():
        (described,) = await admin.describe_topics([settings.topic])
        count = len(described["partitions"])
        if count != settings.topic_partitions:
            log.warning(
                "topic %s has %d partitions, LEDGER_TOPIC_PARTITIONS says %d: the topic wins;"
                " never change the partition count of a topic that holds events",
                settings.topic,
                count,
                settings.topic_partitions,
            )
        return False
    topic = NewTopic(
        settings.topic,
        settings.topic_partitions,
        settings.topic_replication,
        topic_configs=topic_configs(settings),
    )
    return await _create_missing(admin, topic, "event topic")


async def highwaters(kafka: KafkaAccess, topic: str, timeout_s: float = 10.0) -> dict[int, int]:
    """The high-water mark of every partition, read from fetch responses."""
    consumer = new_consumer(kafka, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic)
        deadline = time.monotonic() + timeout_s
        while not partitions:
            if time.monotonic() > deadline:
                raise TimeoutError(f"topic {topic} has no partitions in the broker's metadata")
            await consumer.topics()  # refreshes the metadata
            partitions = consumer.partitions_for_topic(topic)
            await asyncio.sleep(0.05)
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        while any(consumer.highwater(tp) is None for tp in tps):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no high-water mark for every partition of {topic}")
            await consumer.getmany(*tps, timeout_ms=100)
        return {tp.partition: int(consumer.highwater(tp)) for tp in tps}
    finally:
        await consumer.stop()


async def partition_count(kafka: KafkaAccess, topic: str) -> int | None:
    """How many partitions `topic` has; None when it does not exist."""
    admin = new_admin(kafka)
    await admin.start()
    try:
        if topic not in await admin.list_topics():
            return None
        (described,) = await admin.describe_topics([topic])
        return len(described["partitions"])
    finally:
        await admin.close()


async def create_log_topic(settings: Settings, topic: str, partitions: int) -> bool:
    """Create `topic` like the event topic (kept forever, never compacted) with `partitions`
    partitions, unless it exists; True when created now. For restores into a new topic."""
    admin = new_admin(settings.kafka)
    await admin.start()
    try:
        new = NewTopic(
            topic, partitions, settings.topic_replication, topic_configs=topic_configs(settings)
        )
        return await _create_missing(admin, new, "topic")
    finally:
        await admin.close()
