"""A topic weaker than the ledger needs is named, with what it costs; the production
settings, the checks topic's and the checkpoint topic's keep everything."""

from __future__ import annotations

import pytest

from services.config import Settings, SettingsError
from services.ledger.topic import (
    DEAD_LETTER_RETENTION_COST,
    dead_letter_topic_configs,
    required_configs,
    state_topic_configs,
    topic_configs,
)
from services.ledger.topic_check import DescribedTopic, topic_weaknesses

PRODUCTION = Settings.from_env(
    {
        "LEDGER_TOPIC_REPLICATION": "3",
        "LEDGER_TOPIC_MIN_INSYNC_REPLICAS": "2",
        "LEDGER_KAFKA_IDEMPOTENCE": "true",
    }
)
EVENTS = topic_configs(PRODUCTION)
STATE = state_topic_configs(PRODUCTION)


def test_the_production_event_topic_settings() -> None:
    assert EVENTS == {
        "retention.ms": "-1",
        "retention.bytes": "-1",
        "cleanup.policy": "delete",
        "min.insync.replicas": "2",
        "unclean.leader.election.enable": "false",
    }
    assert PRODUCTION.kafka_idempotence is True


def test_every_ledger_topic_is_checked_and_only_the_state_topic_is_compacted() -> None:
    required = required_configs(PRODUCTION)
    assert set(required) == {
        PRODUCTION.topic,
        PRODUCTION.state_topic,
        PRODUCTION.checks_topic,
        PRODUCTION.checkpoints_topic,
        PRODUCTION.dead_letter_topic,
    }
    compacted = [name for name, c in required.items() if c["cleanup.policy"] != "delete"]
    assert compacted == [PRODUCTION.state_topic]
    # the checks and checkpoint topics are evidence: kept forever like the events
    evidence = (PRODUCTION.checks_topic, PRODUCTION.checkpoints_topic)
    assert all(required[name] == EVENTS for name in evidence)
    # dead letters (foreign records) are kept for LEDGER_DEAD_LETTER_RETENTION_DAYS only
    thirty_days = str(30 * 86_400_000)
    assert required[PRODUCTION.dead_letter_topic] == {**EVENTS, "retention.ms": thirty_days}


@pytest.mark.parametrize("days", [1, 30, 3650])
def test_the_dead_letter_topic_keeps_records_for_the_setting(days: int) -> None:
    settings = Settings.from_env({"LEDGER_DEAD_LETTER_RETENTION_DAYS": str(days)})
    assert dead_letter_topic_configs(settings)["retention.ms"] == str(days * 86_400_000)


def test_a_dead_letter_topic_kept_forever_is_named_with_what_that_costs() -> None:
    required = dead_letter_topic_configs(PRODUCTION)
    kept_forever = DescribedTopic("consent.deadletter", EVENTS, 3)
    costs = {"retention.ms": DEAD_LETTER_RETENTION_COST}
    (found,) = topic_weaknesses(kept_forever, required, 3, costs)
    assert found == (
        f"topic consent.deadletter: retention.ms=-1, required {required['retention.ms']}:"
        f" {DEAD_LETTER_RETENTION_COST}"
    )


# (id, what the broker reports, required configs, words each weakness must contain)
CASES: list[tuple[str, dict[str, str], int, dict[str, str], list[str]]] = [
    ("as-created", dict(EVENTS), 3, EVENTS, []),
    ("broker-adds-other-configs", {**EVENTS, "segment.ms": "604800000"}, 3, EVENTS, []),
    ("more-in-sync-replicas", {**EVENTS, "min.insync.replicas": "3"}, 3, EVENTS, []),
    ("compact-state", dict(STATE), 3, STATE, []),
    (
        "seven-day-retention",
        {**EVENTS, "retention.ms": "604800000"},
        3,
        EVENTS,
        ["retention.ms=604800000, required -1", "consent evidence would silently disappear"],
    ),
    (
        "size-retention",
        {**EVENTS, "retention.bytes": "1073741824"},
        3,
        EVENTS,
        ["retention.bytes=1073741824", "oldest records"],
    ),
    (
        "compacted-events",
        {**EVENTS, "cleanup.policy": "compact"},
        3,
        EVENTS,
        ["cleanup.policy=compact, required delete", "latest record"],
    ),
    (
        "compact-and-delete-events",
        {**EVENTS, "cleanup.policy": "compact,delete"},
        3,
        EVENTS,
        ["cleanup.policy=compact,delete"],
    ),
    (
        "state-that-deletes",
        {**STATE, "cleanup.policy": "delete"},
        3,
        STATE,
        ["cleanup.policy=delete, required compact"],
    ),
    (
        "one-in-sync-replica",
        {**EVENTS, "min.insync.replicas": "1"},
        3,
        EVENTS,
        ["min.insync.replicas=1, required 2", "acks=all"],
    ),
    (
        "unclean-election",
        {**EVENTS, "unclean.leader.election.enable": "true"},
        3,
        EVENTS,
        ["unclean.leader.election.enable=true", "out-of-sync replica"],
    ),
    (
        "not-a-number",
        {**EVENTS, "min.insync.replicas": "two"},
        3,
        EVENTS,
        ["min.insync.replicas=two"],
    ),
    (
        "fewer-replicas",
        dict(EVENTS),
        1,
        EVENTS,
        ["1 replica(s)", "LEDGER_TOPIC_REPLICATION asks for 3"],
    ),
    (
        "not-reported",
        {k: v for k, v in EVENTS.items() if k != "retention.ms"},
        3,
        EVENTS,
        ["does not report retention.ms", "nothing shows it is -1"],
    ),
]


@pytest.mark.parametrize(
    ("configs", "replicas", "required", "expected"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_weaknesses(
    configs: dict[str, str], replicas: int, required: dict[str, str], expected: list[str]
) -> None:
    found = topic_weaknesses(DescribedTopic("consent.events", configs, replicas), required, 3)
    assert len(found) == (1 if expected else 0), found
    for words in expected:
        assert words in found[0]
    assert all(w.startswith("topic consent.events") for w in found)


def test_every_weakness_of_a_topic_is_named() -> None:
    weak = {
        "retention.ms": "86400000",
        "cleanup.policy": "compact",
        "min.insync.replicas": "1",
    }
    found = topic_weaknesses(DescribedTopic("t", weak, 1), EVENTS, 3)
    named = ["replica(s)", "retention.ms", "retention.bytes", "cleanup.policy"]
    named += ["min.insync.replicas", "unclean.leader.election.enable"]
    assert [next(n for n in named if n in w) for w in found] == named


@pytest.mark.parametrize(("value", "ok"), [("warn", True), ("refuse", True), ("stop", False)])
def test_the_topic_check_setting(value: str, ok: bool) -> None:
    if ok:
        assert Settings.from_env({"LEDGER_TOPIC_CHECK": value}).topic_check == value
    else:
        with pytest.raises(SettingsError, match="LEDGER_TOPIC_CHECK='stop'; accepted: warn"):
            Settings.from_env({"LEDGER_TOPIC_CHECK": value})
