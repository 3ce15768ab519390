"""The audience rule: each row is answered as `decide()` answers its subject's whole state,
each pattern decided once; the streaming digest equals the check's digest."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from projections.fact_patterns import pattern_of
from projections.state import fold
from services.proof.contact_checks import SortedDigest, recipients_digest
from services.rules.audience import AudienceTally, AudienceVerdicts, allowed_of
from services.rules.batch import relevance
from services.rules.decisions import decide
from tests.unit.event_log import CATALOGUE, NOW, dm_object, grant, log, withdraw

NEWSLETTER = CATALOGUE.get("newsletter")


def test_rows_are_kept_or_counted_as_decide_answers_their_subjects() -> None:
    assert NEWSLETTER is not None
    histories = {
        "a": [grant("newsletter")],
        "b": [grant("newsletter"), withdraw("newsletter", None)],
        "c": [grant("newsletter"), dm_object("email")],
        "d": [],
        "e": [grant("newsletter")],
    }
    rel = relevance(NEWSLETTER, "email")
    rows, expected = [], {}
    for subject, specs in histories.items():
        state = fold(log(specs))
        rows.append((subject, pattern_of(state.values(), rel, NOW)))
        expected[subject] = decide(state, NEWSLETTER, "email", NOW)
    verdicts, tally = AudienceVerdicts(NEWSLETTER, "email", NOW), AudienceTally()
    allowed = allowed_of(rows, verdicts, tally)
    assert allowed == [s for s, d in expected.items() if d.allowed] == ["a", "e"]
    denied = [d.reason for d in expected.values() if not d.allowed]
    assert tally.by_reason() == {r: denied.count(r) for r in sorted(set(denied))}
    assert tally.considered == len(histories)
    assert len(verdicts.decided) == 4  # "a" and "e" share a pattern


@given(st.sets(st.text(min_size=1, max_size=8)))
def test_the_streaming_digest_is_the_checks_digest(keys: set[str]) -> None:
    digest = SortedDigest()
    for key in sorted(keys):
        digest.add(key)
    assert digest.hexdigest() == recipients_digest(keys)
