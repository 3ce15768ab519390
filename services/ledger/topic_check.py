"""Whether a topic as the broker describes it keeps what the ledger needs of it.

The ledger creates its topics with the settings of services/ledger/topic.py, but a topic made by
hand, by an older version or altered since may be weaker: finite retention silently deletes
consent evidence, compaction keeps only each subject's latest event, fewer in-sync replicas
or unclean leader election lose acknowledged events when a broker fails. The comparison is
pure; services/ledger/topic.py describes the topics and logs (or refuses) what this finds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class DescribedTopic:
    """What the broker reports of a topic: its configs and its fewest distinct replicas."""

    name: str
    configs: Mapping[str, str]
    replicas: int


def _number(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None


def _at_least(actual: str, required: str) -> bool:
    number = _number(actual)
    return number is not None and number >= int(required)


def _same_policy(actual: str, required: str) -> bool:
    return {p.strip() for p in actual.split(",")} == {p.strip() for p in required.split(",")}


def _equal(actual: str, required: str) -> bool:
    return actual.strip().lower() == required.lower()


#: config -> (does the actual value keep the required one, what a weaker value costs)
RULES: Final[dict[str, tuple[Callable[[str, str], bool], str]]] = {
    "retention.ms": (
        _equal,
        "the broker deletes older records: consent evidence would silently disappear",
    ),
    "retention.bytes": (
        _equal,
        "the broker deletes the oldest records once a partition is that large",
    ),
    "cleanup.policy": (
        _same_policy,
        "compaction keeps only each key's latest record, and deletion drops old ones",
    ),
    "min.insync.replicas": (
        _at_least,
        "an acknowledged write (acks=all) may be on fewer replicas, and lost with them",
    ),
    "unclean.leader.election.enable": (
        _equal,
        "an out-of-sync replica may become leader, dropping acknowledged records",
    ),
}


def topic_weaknesses(
    topic: DescribedTopic,
    required: Mapping[str, str],
    replication: int,
    costs: Mapping[str, str] | None = None,
) -> list[str]:
    """Each way `topic` is weaker than `required` configs and `replication` replicas, in words
    an operator can act on; empty when it keeps them all. `costs` says, per config, what a
    wrong value costs on this topic where that differs from RULES."""
    found = []
    if topic.replicas < replication:
        found.append(
            f"topic {topic.name} has {topic.replicas} replica(s) per partition at the least;"
            f" LEDGER_TOPIC_REPLICATION asks for {replication}: a broker failure may lose"
            " acknowledged records"
        )
    for name, wanted in required.items():
        keeps, cost = RULES.get(name, (_equal, "the ledger relies on this value"))
        cost = (costs or {}).get(name, cost)
        actual = topic.configs.get(name)
        if actual is None:
            found.append(
                f"topic {topic.name}: the broker does not report {name}, so nothing shows it is"
                f" {wanted}; if it is not, {cost}"
            )
        elif not keeps(actual, wanted):
            found.append(f"topic {topic.name}: {name}={actual}, required {wanted}: {cost}")
    return found
