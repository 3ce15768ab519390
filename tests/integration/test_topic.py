"""The event topic is created explicitly, with the configured partition count."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from services.config import Settings
from services.topic import ensure_topic, highwaters

pytestmark = pytest.mark.integration


async def test_topic_has_the_configured_partitions_and_a_mismatch_is_reported(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        (topic,) = await admin.describe_topics([settings.topic])
    finally:
        await admin.close()
    assert len(topic["partitions"]) == settings.topic_partitions
    marks = await highwaters(settings.kafka_bootstrap_servers, settings.topic)
    assert marks == dict.fromkeys(range(settings.topic_partitions), 0)

    with caplog.at_level(logging.WARNING, logger="services.topic"):
        created = await ensure_topic(replace(settings, topic_partitions=12))
    assert created is False
    assert "has 4 partitions, LEDGER_TOPIC_PARTITIONS says 12" in caplog.text
