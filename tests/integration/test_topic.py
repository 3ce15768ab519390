"""The ledger's topics are created explicitly, with the configured partition count and the
settings they are checked against on every start."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest
from aiokafka.admin import NewTopic

from services.config import Settings
from services.ledger.kafka_clients import new_admin
from services.ledger.topic import (
    WeakTopicError,
    check_topics,
    describe,
    ensure_topic,
    highwaters,
    required_configs,
    topic_configs,
)
from tests.servers import Servers

pytestmark = pytest.mark.integration


async def test_topic_has_the_configured_partitions_and_a_mismatch_is_reported(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    admin = new_admin(settings.kafka)
    await admin.start()
    try:
        (topic,) = await admin.describe_topics([settings.topic])
    finally:
        await admin.close()
    assert len(topic["partitions"]) == settings.topic_partitions
    marks = await highwaters(settings.kafka, settings.topic)
    assert marks == dict.fromkeys(range(settings.topic_partitions), 0)

    with caplog.at_level(logging.WARNING, logger="services.ledger.topic"):
        created = await ensure_topic(replace(settings, topic_partitions=12))
    assert created is False
    assert "has 4 partitions, LEDGER_TOPIC_PARTITIONS says 12" in caplog.text


async def test_the_ledgers_topics_are_created_with_the_settings_they_are_checked_against(
    settings: Settings,
) -> None:
    """The embedded broker keeps and reports the configs a topic was created with, though it
    enforces none of them (no retention, no compaction, one broker)."""
    admin = new_admin(settings.kafka)
    await admin.start()
    try:
        required = required_configs(settings)
        described = {t.name: t for t in await describe(admin, list(required))}
        assert await check_topics(admin, settings) == []
    finally:
        await admin.close()
    for name, configs in required.items():
        assert described[name].configs.items() >= configs.items(), name
        assert described[name].replicas == settings.topic_replication
    assert described[settings.topic].configs["retention.ms"] == "-1"
    assert described[settings.state_topic].configs["cleanup.policy"] == "compact"


async def _create(settings: Settings, name: str, configs: dict[str, str]) -> None:
    admin = new_admin(settings.kafka)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 2, 1, topic_configs=configs)])
    finally:
        await admin.close()


async def test_a_weaker_existing_event_topic_is_reported_and_refused_when_asked(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    weak = replace(settings, topic=f"{settings.topic}.weak")
    await _create(
        weak,
        weak.topic,
        {**topic_configs(weak), "retention.ms": "604800000", "cleanup.policy": "compact"},
    )
    with caplog.at_level(logging.WARNING, logger="services.ledger.topic"):
        assert await ensure_topic(weak) is False
    assert f"topic {weak.topic}: retention.ms=604800000, required -1" in caplog.text
    assert f"topic {weak.topic}: cleanup.policy=compact, required delete" in caplog.text
    assert settings.state_topic not in caplog.text  # the other topics keep their settings

    with pytest.raises(WeakTopicError, match="2 topic setting"):
        await ensure_topic(replace(weak, topic_check="refuse"))


async def test_a_topic_made_without_the_ledgers_configs_has_kafkas_default_retention(
    real_servers: Servers, settings: Settings
) -> None:
    """Needs real Kafka: it reports the broker's defaults (7 days of retention), which the
    embedded broker neither reports nor enforces."""
    if real_servers.kind == "embedded":
        pytest.skip(
            "the embedded broker reports no broker defaults and enforces no retention; set"
            " KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL to a real Kafka cluster to run this"
        )
    bare = replace(settings, topic=f"{settings.topic}.bare")
    await _create(bare, bare.topic, {})
    admin = new_admin(bare.kafka)
    await admin.start()
    try:
        found = await check_topics(admin, bare)
    finally:
        await admin.close()
    retention = [w for w in found if w.startswith(f"topic {bare.topic}: retention.ms=")]
    assert retention and "required -1" in retention[0]
    assert not [w for w in found if "does not report" in w]
