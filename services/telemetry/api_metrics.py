"""The API process's own metrics on GET /metrics: request latency per route, decisions by
reason, commands by event type.

They live in this process's memory and start at zero when it starts, as Prometheus expects of
a process's counters (the projector's histograms, kept in PostgreSQL, are
projections/metrics.py). Every label value comes from a fixed set: route templates, never
concrete paths; decision reasons; event types and collection methods. So no personal data
reaches a label and the number of series stays bounded.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Iterable, Sequence
from typing import Final

from schemas.events import Event
from services.rules.batch import BatchResult
from services.telemetry.metric_registry import Registry

REQUEST_SECONDS: Final = "ledger_http_request_duration_seconds"
DECISIONS: Final = "ledger_decisions_total"
COMMANDS: Final = "ledger_commands_total"

#: `endpoint` label of DECISIONS
SINGLE: Final = "decision"
AS_OF: Final = "decision_as_of"
BATCH: Final = "batch"

#: `outcome` label of COMMANDS
ACKNOWLEDGED: Final = "acknowledged"
REPLAYED: Final = "replayed"

REGISTRY: Final = Registry()
request_seconds: Final = REGISTRY.histogram(
    REQUEST_SECONDS,
    "Time from a request's arrival to the end of its answer, by route template, method and"
    " status class.",
    ("method", "route", "status_class"),
)
decisions: Final = REGISTRY.counter(
    DECISIONS,
    "Decisions answered, by endpoint (decision, decision_as_of, batch: one per recipient),"
    " reason and whether contact is allowed.",
    ("endpoint", "reason", "allowed"),
)
commands: Final = REGISTRY.counter(
    COMMANDS,
    "Events of commands acknowledged by the broker (outcome acknowledged) or answered from an"
    " earlier request with the same Idempotency-Key (outcome replayed), by event type and"
    " collection method.",
    ("type", "source_method", "outcome"),
)


def _flag(allowed: bool) -> str:
    return "true" if allowed else "false"


def count_decision(endpoint: str, reason: str, allowed: bool) -> None:
    decisions.inc(endpoint, reason, _flag(allowed))


def batch_reasons(result: BatchResult, reason_of: Callable[[str], str]) -> Tally[tuple[str, bool]]:
    """(reason, allowed) -> recipients; `reason_of` names the reason of an allowed recipient
    (a batch answer lists only the reasons of denied ones)."""
    tally: Tally[tuple[str, bool]] = Tally((reason, False) for _, reason in result.denied)
    tally.update((reason_of(recipient), True) for recipient in result.allowed)
    return tally


def count_batch(tally: Iterable[tuple[tuple[str, bool], int]]) -> None:
    for (reason, allowed), recipients in tally:
        decisions.inc(BATCH, reason, _flag(allowed), amount=recipients)


def count_commands(events: Sequence[Event], replayed: bool) -> None:
    """Each event a command put in the log (or found there, for a replay)."""
    outcome = REPLAYED if replayed else ACKNOWLEDGED
    for event in events:
        commands.inc(event.type, event.source.method, outcome)


def prometheus_text() -> str:
    return REGISTRY.render()
