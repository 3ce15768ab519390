"""The state topic's setting and creation settings."""

from __future__ import annotations

import pytest

from services.config import Settings, SettingsError
from services.ledger.topic import state_topic_configs, topic_configs


def test_the_state_topic_defaults_to_consent_state() -> None:
    assert Settings.from_env({}).state_topic == "consent.state"


@pytest.mark.parametrize("value", ["", "consent.events"])
def test_the_state_topic_must_be_set_and_differ_from_the_event_topic(value: str) -> None:
    with pytest.raises(SettingsError, match="LEDGER_STATE_TOPIC"):
        Settings.from_env({"LEDGER_STATE_TOPIC": value})


def test_the_state_topic_is_compacted_and_the_event_topic_is_not() -> None:
    settings = Settings.from_env(
        {"LEDGER_TOPIC_REPLICATION": "3", "LEDGER_TOPIC_MIN_INSYNC_REPLICAS": "2"}
    )
    assert state_topic_configs(settings) == {
        "cleanup.policy": "compact",
        "min.insync.replicas": "2",
        "unclean.leader.election.enable": "false",
    }
    assert topic_configs(settings)["cleanup.policy"] == "delete"
