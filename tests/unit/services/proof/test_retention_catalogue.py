"""Which proof period the retention job keeps an erased subject's proof for when a purpose
changed or was retired: the longest any of its versions promised."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from services.proof.retention import longest_kept, proof_until
from services.rules.catalogue import Purpose
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
