"""The ledger_webhook_* lines of GET /metrics (projections/webhook_deliveries.py): the exact
text for a known state, and for any state a text every line of which a Prometheus reader
takes back to the numbers it was made from."""

from __future__ import annotations

import re
import uuid

from hypothesis import given
from hypothesis import strategies as st

from projections.webhook_deliveries import (
    FAILED,
    PARKED,
    REFUSED,
    SUCCEEDED,
    TIMEOUT,
    QueueGauge,
    prometheus_text,
)

A = uuid.UUID("00000000-0000-4000-8000-00000000000a")
B = uuid.UUID("00000000-0000-4000-8000-00000000000b")
NAMES = (
    "ledger_webhook_attempts_total",
    "ledger_webhook_parked_total",
    "ledger_webhook_queue_depth",
    "ledger_webhook_oldest_pending_seconds",
)
#: a sample line of the text format: name, labels, a value
SAMPLE = re.compile(r'^([a-z_]+)\{((?:[a-z_]+="[^"\\\n]*",?)+)\} (\S+)$')


def test_the_exact_text() -> None:
    text = prometheus_text(
        [(A, FAILED, 3), (A, SUCCEEDED, 12), (B, PARKED, 1), (B, TIMEOUT, 7)],
        [QueueGauge(A, 0, 0.0), QueueGauge(B, 2, 61.5)],
    )
    assert text.splitlines() == [
        "# HELP ledger_webhook_attempts_total Webhook delivery attempts by outcome (succeeded,"
        " failed, timeout, refused).",
        "# TYPE ledger_webhook_attempts_total counter",
        f'ledger_webhook_attempts_total{{subscription="{A}",outcome="failed"}} 3',
        f'ledger_webhook_attempts_total{{subscription="{A}",outcome="succeeded"}} 12',
        f'ledger_webhook_attempts_total{{subscription="{B}",outcome="timeout"}} 7',
        "# HELP ledger_webhook_parked_total Webhook deliveries parked after their retry window.",
        "# TYPE ledger_webhook_parked_total counter",
        f'ledger_webhook_parked_total{{subscription="{B}"}} 1',
        "# HELP ledger_webhook_queue_depth Pending webhook deliveries of the enabled subscription.",
        "# TYPE ledger_webhook_queue_depth gauge",
        f'ledger_webhook_queue_depth{{subscription="{A}"}} 0',
        f'ledger_webhook_queue_depth{{subscription="{B}"}} 2',
        "# HELP ledger_webhook_oldest_pending_seconds Age of the enabled subscription's oldest"
        " pending webhook delivery (since it was created or redelivered); 0 when none is"
        " pending.",
        "# TYPE ledger_webhook_oldest_pending_seconds gauge",
        f'ledger_webhook_oldest_pending_seconds{{subscription="{A}"}} 0.0',
        f'ledger_webhook_oldest_pending_seconds{{subscription="{B}"}} 61.5',
    ]
    assert text.endswith("\n")


def test_no_subscription_gives_the_families_without_samples() -> None:
    lines = prometheus_text([], []).splitlines()
    assert lines == [line for line in lines if line.startswith("# ")]
    assert [line.split()[2] for line in lines if line.startswith("# TYPE")] == list(NAMES)
    assert [line.split()[3] for line in lines if line.startswith("# TYPE")] == [
        "counter",
        "counter",
        "gauge",
        "gauge",
    ]


def parse(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of the text, by name and labels; a malformed line fails the test."""
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    family = None
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            family = line.split()[2]
            continue
        if line.startswith("# HELP "):
            continue
        match = SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        name, labels, value = match.groups()
        assert name == family, f"{name} outside its family's TYPE"
        pairs = frozenset(tuple(p.split("=", 1)) for p in re.findall(r'[a-z_]+="[^"]*"', labels))
        key = (name, frozenset((k, v.strip('"')) for k, v in pairs))
        assert key not in samples, f"a sample twice: {line!r}"
        samples[key] = float(value)
    return samples


subscriptions = st.lists(st.uuids(), unique=True, min_size=1, max_size=5)


@given(
    subscriptions.flatmap(
        lambda sids: st.tuples(
            st.just(sids),
            st.lists(
                st.tuples(
                    st.sampled_from(sids),
                    st.sampled_from([SUCCEEDED, FAILED, TIMEOUT, REFUSED, PARKED]),
                    st.integers(min_value=0, max_value=2**53),
                ),
                unique_by=lambda c: (c[0], c[1]),
                max_size=10,
            ),
            st.lists(
                st.tuples(
                    st.integers(min_value=0, max_value=10**9),
                    st.floats(min_value=0, max_value=1e9, allow_nan=False),
                ),
                min_size=len(sids),
                max_size=len(sids),
            ),
        )
    )
)
def test_every_line_reads_back_to_its_numbers(
    state: tuple[list[uuid.UUID], list[tuple[uuid.UUID, str, int]], list[tuple[int, float]]],
) -> None:
    sids, counts, queues = state
    gauges = [QueueGauge(s, depth, age) for s, (depth, age) in zip(sids, queues, strict=True)]
    samples = parse(prometheus_text(counts, gauges))
    expected: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for sid, outcome, n in counts:
        if outcome == PARKED:  # deliveries parked, a family of their own beside the attempts
            expected[(NAMES[1], frozenset({("subscription", str(sid))}))] = n
        else:
            labels = frozenset({("subscription", str(sid)), ("outcome", outcome)})
            expected[(NAMES[0], labels)] = n
    for g in gauges:
        labels = frozenset({("subscription", str(g.subscription_id))})
        expected[(NAMES[2], labels)] = g.depth
        expected[(NAMES[3], labels)] = g.oldest_pending_s
    assert samples == expected
