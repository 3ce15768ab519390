"""The API's metrics: what a batch adds per reason, what a command adds per event type."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from schemas import events as ev
from schemas.events import Event, Source
from services.rules.batch import BatchResult
from services.telemetry import api_metrics

NOW = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("allowed", "denied", "reasons", "expected"),
    [
        ([], [], {}, {}),
        (
            ["s1", "s2", "s3"],
            [("s4", "no_consent"), ("s5", "no_consent"), ("s6", "erased")],
            {"s1": "consent_given", "s2": "consent_given", "s3": "contract"},
            {
                ("consent_given", True): 2,
                ("contract", True): 1,
                ("no_consent", False): 2,
                ("erased", False): 1,
            },
        ),
        (
            [],
            [("x@example.com", "invalid_address"), ("y@example.com", "unknown_subject")],
            {},
            {("invalid_address", False): 1, ("unknown_subject", False): 1},
        ),
    ],
)
def test_batch_reasons_count_each_recipient_once(
    allowed: list[str],
    denied: list[tuple[str, str]],
    reasons: dict[str, str],
    expected: dict[tuple[str, bool], int],
) -> None:
    result = BatchResult(allowed=allowed, denied=denied)
    tally = api_metrics.batch_reasons(result, reasons.__getitem__)
    assert dict(tally) == expected
    assert sum(tally.values()) == result.requested


def test_a_batch_adds_to_the_batch_endpoint_only() -> None:
    tally = {("consent_given", True): 3, ("no_consent", False): 2}
    before = {
        (endpoint, reason, allowed): api_metrics.decisions.value(endpoint, reason, allowed)
        for endpoint in (api_metrics.BATCH, api_metrics.SINGLE)
        for reason, allowed in (("consent_given", "true"), ("no_consent", "false"))
    }
    api_metrics.count_batch(tally.items())
    for (endpoint, reason, allowed), value in before.items():
        added = {"true": 3, "false": 2}[allowed] if endpoint == api_metrics.BATCH else 0
        assert api_metrics.decisions.value(endpoint, reason, allowed) == value + added


def _event(type_: str, method: str) -> Event:
    return Event(type_, uuid.uuid4(), "s1", NOW, NOW, Source(method=method))


@pytest.mark.parametrize("replayed", [False, True])
def test_commands_count_each_event_by_type_method_and_outcome(replayed: bool) -> None:
    events = [
        _event(ev.DIRECT_MARKETING_OBJECTION_LIFTED, "api"),
        _event(ev.CONSENT_GRANTED, "api"),
        _event(ev.CONSENT_WITHDRAWN, "unsubscribe_link"),
    ]
    outcome = api_metrics.REPLAYED if replayed else api_metrics.ACKNOWLEDGED
    other = api_metrics.ACKNOWLEDGED if replayed else api_metrics.REPLAYED
    labels = [(e.type, e.source.method) for e in events]
    before = {k: api_metrics.commands.value(*k, outcome) for k in labels}
    untouched = {k: api_metrics.commands.value(*k, other) for k in labels}
    api_metrics.count_commands(events, replayed)
    for key in labels:
        assert api_metrics.commands.value(*key, outcome) == before[key] + 1
        assert api_metrics.commands.value(*key, other) == untouched[key]


def test_the_api_metrics_render_with_help_and_type() -> None:
    text = api_metrics.prometheus_text()
    for name, kind in (
        (api_metrics.REQUEST_SECONDS, "histogram"),
        (api_metrics.DECISIONS, "counter"),
        (api_metrics.COMMANDS, "counter"),
    ):
        assert f"# HELP {name} " in text and f"# TYPE {name} {kind}\n" in text
