"""The writer-key rule of the staleness guard: while a projector that reports a partition does
not know the writer key the API MACs with, it would dead-letter what the API writes, so
decisions, /readyz and commands refuse; a rolling rotation (projectors first) refuses nothing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from projections.freshness import (
    WRITER_KEY_ADVICE,
    PartitionFreshness,
    assess,
    unknown_writer_key,
)
from projections.log_loss import AHEAD_OF_LOG, LogLoss
from schemas.record_mac import RecordMacs

OLD, NEW = ("w1",), ("w2", "w1")
LOSS = LogLoss(1, AHEAD_OF_LOG, 9, 0, 2)


def reported(keys: list[tuple[str, ...] | None], behind_s: float = 0.5) -> list[PartitionFreshness]:
    """One caught-up partition per entry, its projector knowing these key ids."""
    return [PartitionFreshness(p, 5, 5, behind_s, k) for p, k in enumerate(keys)]


@pytest.mark.parametrize(
    ("partitions", "stops", "limit", "current", "fresh", "reason", "refused"),
    [
        # every projector knows the key: nothing refused, before and after the API moves
        (reported([NEW, NEW]), [], 30, "w2", True, None, None),
        (reported([NEW, NEW]), [], 30, "w1", True, None, None),
        # halfway through a rolling restart of the projectors, the API still on w1
        (reported([NEW, OLD]), [], 30, "w1", True, None, None),
        # the API moved first: refused on the partition whose projector does not know w2
        (reported([NEW, OLD]), [], 30, "w2", False, "partition 1 does not know writer key w2", 1),
        (reported([OLD, OLD]), [], 30, "w2", False, "partition 0, 1 does not know", 1),
        (reported([OLD, OLD]), [], 30, "w2", False, "(it knows w1)", 1),
        # two projectors with other rings: each ring named
        (reported([("w1",), ("w3",)]), [], 30, "w2", False, "(it knows w1, w3)", 1),
        # with the time limit off too: a known loss, not lateness
        (reported([OLD, NEW]), [], 0, "w2", False, "partition 0 does not know writer key w2", 1),
        # named before an unreported or a late partition
        (reported([OLD]), [], 30, "w2", False, "does not know writer key w2", 1),
        (reported([NEW, OLD], 99.0), [], 30, "w2", False, "does not know writer key w2", 1),
        # a stop is named first; commands are still refused
        (reported([OLD, OLD]), [LOSS], 30, "w2", False, "the projector stopped", 1),
        # a stop alone refuses decisions, not commands
        (reported([NEW, NEW]), [LOSS], 30, "w2", False, "the projector stopped", None),
        # unreported partitions: decisions fail closed (guard on), commands are not refused
        (reported([NEW]), [], 30, "w2", False, "no projector has reported partition 1", None),
        (reported([NEW]), [], 0, "w2", True, None, None),
        # a projector that did not say which keys it knows (an earlier version) is like one
        # that has not reported: decisions fail closed with the guard on, commands pass
        (reported([NEW, None]), [], 30, "w2", False, "partition 1 has not said which", None),
        (reported([NEW, None]), [], 0, "w2", True, None, None),
    ],
)
def test_assess_with_writer_keys(
    partitions: list[PartitionFreshness],
    stops: list[LogLoss],
    limit: float,
    current: str,
    fresh: bool,
    reason: str | None,
    refused: int | None,
) -> None:
    verdict = assess(partitions, stops, 2, limit, current)
    assert verdict.fresh is fresh
    if reason is None:
        assert verdict.reason is None
    else:
        assert verdict.reason is not None and reason in verdict.reason
    if refused is None:
        assert verdict.writes_refused is None
    else:
        assert verdict.writes_refused is not None
        assert f"writer key {current}" in verdict.writes_refused
        assert WRITER_KEY_ADVICE in verdict.writes_refused


def test_the_reason_says_what_to_do() -> None:
    why = unknown_writer_key(reported([NEW, OLD, OLD]), "w2")
    assert why == (
        "the projector of partition 1, 2 does not know writer key w2, which this API MACs new"
        " records with (it knows w1), and would dead-letter them as unauthenticated-record;"
        " give the projectors the current writer keys (`consent-ledger init"
        " --writer-keys-file`) and restart them; on a rotation, restart the projectors before"
        " the API"
    )


KIDS = ("w1", "w2", "w3")
rings = st.none() | st.sets(st.sampled_from(KIDS), min_size=1).map(lambda s: tuple(sorted(s)))


@given(
    rings=st.lists(rings, max_size=4),
    behind=st.lists(st.none() | st.floats(0, 100, allow_nan=False), min_size=4, max_size=4),
    current=st.sampled_from(KIDS),
    limit=st.sampled_from([0.0, 30.0]),
)
def test_refused_exactly_when_a_reporting_projector_lacks_the_key(
    rings: list[tuple[str, ...] | None], behind: list[float | None], current: str, limit: float
) -> None:
    partitions = [PartitionFreshness(p, 5, 5, behind[p], k) for p, k in enumerate(rings)]
    verdict = assess(partitions, [], 4, limit, current)
    lacking = [p for p, k in enumerate(rings) if k is not None and current not in k]
    assert (verdict.writes_refused is not None) == bool(lacking)
    if lacking:
        assert not verdict.fresh and verdict.reason == verdict.writes_refused
    if verdict.fresh and limit > 0:
        # the guard on: every partition reported, each by a projector that knows the key
        assert len(rings) == 4 and all(k is not None and current in k for k in rings)


def test_a_ring_reports_its_key_ids_in_order_and_never_the_keys() -> None:
    macs = RecordMacs({"w2": b"\x02" * 32, "w1": b"\x01" * 32}, "w2")
    assert macs.key_ids == ("w2", "w1")
