"""The audit's rules on their own: which logs pass against a client's tally and which do not."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from schemas import events as ev
from tests.faults.log_audit import LoggedEvent, audit
from tests.faults.workload import SHAPES, Command

GRANT = (ev.CONSENT_GRANTED,)
LIFT_AND_GRANT = (ev.DIRECT_MARKETING_OBJECTION_LIFTED, ev.CONSENT_GRANTED)
SENT = {
    "k1": Command("k1", "s1", "consents", {}, GRANT),
    "k2": Command("k2", "s2", "consents", {}, LIFT_AND_GRANT),
}


def rec(
    offset: int, event_id: str, key: str | None, type_: str = ev.CONSENT_GRANTED
) -> LoggedEvent:
    return LoggedEvent(0, offset, event_id, key, type_)


LIFTED = ev.DIRECT_MARKETING_OBJECTION_LIFTED


@pytest.mark.parametrize(
    ("acked", "logged", "finding"),
    [
        ({"k1": ["e1"]}, [rec(0, "e1", "k1")], None),
        # a retry re-sent the same bytes: one event, two records
        ({"k1": ["e1"]}, [rec(0, "e1", "k1"), rec(1, "e1", "k1")], None),
        ({}, [], None),
        ({}, [rec(0, "a", "k2", LIFTED), rec(1, "b", "k2")], None),
        ({"k2": ["a", "b"]}, [rec(0, "a", "k2", LIFTED), rec(1, "b", "k2")], None),
        ({"k1": ["e1"]}, [], "events ['e1'] are not in the log"),
        ({"k1": ["e1"]}, [rec(0, "e1", "k1"), rec(1, "e2", "k1")], "other event ids"),
        ({}, [rec(0, "a", "k2", LIFTED)], "unacknowledged k2 is half-applied"),
        ({}, [rec(0, "e1", "k1"), rec(1, "e2", "k1")], "unacknowledged k1 is half-applied"),
        ({}, [rec(0, "x", "k9")], "was never sent (k9)"),
        ({}, [rec(0, "x", None)], "was never sent (None)"),
        # the purpose catalogue an API start records, a published notice: no client's
        ({}, [rec(0, "p", "purpose catalogue", ev.PURPOSE_DEFINED)], None),
        ({}, [rec(0, "n", None, ev.NOTICE_PUBLISHED)], None),
        ({}, [rec(0, "x", "purpose catalogue")], "was never sent (purpose catalogue)"),
        ({}, [LoggedEvent(0, 7, error="bad magic")], "undecodable record at partition 0 offset 7"),
        (
            {"k1": ["e1"], "k2": ["e1", "b"]},
            [rec(0, "e1", "k1"), rec(1, "e1", "k2"), rec(2, "b", "k2")],
            "logged under two keys",
        ),
        ({"k1": ["e1"]}, [rec(0, "e1", "k1", ev.CONSENT_WITHDRAWN)], "logged types"),
    ],
)
def test_audit_rules(
    acked: dict[str, list[str]], logged: list[LoggedEvent], finding: str | None
) -> None:
    findings = audit(SENT, acked, logged)
    if finding is None:
        assert findings == []
    else:
        assert any(finding in f for f in findings), findings


@st.composite
def honest_logs(
    draw: st.DrawFn,
) -> tuple[dict[str, Command], dict[str, list[str]], list[LoggedEvent]]:
    """Commands, which of them were acknowledged, and a log a correct ledger could have written:
    every acknowledged command whole, each unacknowledged one whole or absent, any record
    repeated, in any order."""
    shapes = draw(st.lists(st.sampled_from(SHAPES), min_size=1, max_size=8))
    sent, acked, records = {}, {}, []
    for i, (route, body, types) in enumerate(shapes):
        key = f"k{i}"
        sent[key] = Command(key, f"s{i}", route, body, types)
        ids = [f"{key}-e{j}" for j in range(len(types))]
        was_acked = draw(st.booleans())
        if was_acked:
            acked[key] = ids
        if was_acked or draw(st.booleans()):
            for event_id, type_ in zip(ids, types, strict=True):
                copies = draw(st.integers(1, 3))
                records += [(event_id, key, type_)] * copies
    order = draw(st.permutations(records))
    logged = [LoggedEvent(0, n, e, k, t) for n, (e, k, t) in enumerate(order)]
    return sent, acked, logged


@given(honest_logs())
def test_a_log_a_correct_ledger_could_write_passes(
    case: tuple[dict[str, Command], dict[str, list[str]], list[LoggedEvent]],
) -> None:
    sent, acked, logged = case
    assert audit(sent, acked, logged) == []


@given(honest_logs(), st.data())
def test_losing_every_copy_of_an_acknowledged_event_is_found(
    case: tuple[dict[str, Command], dict[str, list[str]], list[LoggedEvent]], data: st.DataObject
) -> None:
    sent, acked, logged = case
    assume(acked)
    key = data.draw(st.sampled_from(sorted(acked)))
    lost = data.draw(st.sampled_from(acked[key]))
    kept = [r for r in logged if r.event_id != lost]
    assert any(f"acknowledged {key}" in f for f in audit(sent, acked, kept))
