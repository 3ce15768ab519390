"""Which proof period the retention job keeps an erased subject's proof for when a purpose
changed or was retired: the longest any of its versions promised."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from services.proof.retention import longest_kept, proof_until
from services.rules.catalogue import DEFAULT_PROOF_RETENTION, Purpose
from services.rules.catalogue_history import CatalogueHistory, PurposeRetirement, PurposeVersion

T0 = datetime(2026, 1, 1, tzinfo=UTC)
NEWS = Purpose("news", "News", "consent", True, ("email",), recipients=(), proof_retention="P3Y")
SHORTER = replace(NEWS, proof_retention="P1Y", version=2)
STATS = Purpose("stats", "Stats", "legitimate_interest", False, ("web",), proof_retention="P6M")


def test_each_purpose_keeps_its_longest_period_retired_ones_too() -> None:
    history = CatalogueHistory(
        [
            PurposeVersion(T0, NEWS),
            PurposeVersion(T0 + timedelta(days=1), SHORTER),
            PurposeVersion(T0, STATS),
            PurposeVersion(T0 + timedelta(days=2), PurposeRetirement("stats", 2)),
        ]
    )
    kept = longest_kept(history, T0)
    assert kept.purposes == {"news": NEWS, "stats": STATS}
    erased = T0 + timedelta(days=10)
    # a retired purpose keeps its own period, not the longest of all
    assert proof_until(erased, [("ConsentGranted", {"purpose": "stats"})], kept) == datetime(
        2026, 7, 11, tzinfo=UTC
    )
    assert proof_until(erased, [("ConsentGranted", {"purpose": "news"})], kept) == datetime(
        2029, 1, 11, tzinfo=UTC
    )


@pytest.mark.parametrize("stored", ["P99999Y", "P99999999999D", "P" + "9" * 4400 + "D", "soon"])
def test_a_stored_period_that_cannot_be_counted_never_stops_the_job(
    stored: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A version recorded before the limits were tightened: logged and skipped, the default
    standing in when no version of the purpose can be counted."""
    broken = replace(NEWS, proof_retention=stored, version=2)
    alone = replace(STATS, proof_retention=stored)
    history = CatalogueHistory(
        [PurposeVersion(T0, NEWS), PurposeVersion(T0 + timedelta(days=1), broken),
         PurposeVersion(T0, alone)]
    )  # fmt: skip
    with caplog.at_level(logging.ERROR, logger="services.proof.retention"):
        kept = longest_kept(history, T0)
    assert kept.purposes["news"] == NEWS
    assert kept.purposes["stats"].proof_retention == DEFAULT_PROOF_RETENTION
    assert proof_until(T0, [("ConsentGranted", {"purpose": "stats"})], kept) == datetime(
        2029, 1, 1, tzinfo=UTC
    )
    assert sum("cannot be counted" in r.getMessage() for r in caplog.records) == 2
