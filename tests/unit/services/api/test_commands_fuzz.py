"""Any JSON body, valid or not, gives either events the codec can encode or a 4xx problem
naming fields: never another exception (which the API would answer with a 500)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.codec import default_codec
from services.api import commands as c
from services.http.body import Fields
from services.http.problems import ProblemError
from tests.properties import examples
from tests.unit.event_log import CATALOGUE, NOW

CTX = c.Context("crm:42", NOW, CATALOGUE)

#: names and values the builders know, mixed with noise, so many bodies get far into validation
KNOWN_NAMES = [
    "purpose", "purposes", "channel", "kind", "ground", "basis", "outcome", "evidence",
    "reason", "method", "source", "actor", "occurred_at", "expires_at", "valid_until",
    "notice_version", "lift_objection", "type", "id", "system", "collection_point",
]  # fmt: skip
KNOWN_VALUES = [
    *CATALOGUE.ids, "email", "sms", "web", "direct_marketing", "processing", "legal_claims",
    "contract", "legitimate_interest", "upheld", "compelling_grounds", "form", "subject",
    "2026-01-01T00:00:00Z", "2027-06-01T12:00:00+02:00", "9999-12-31T23:59:59Z", "a@b.fi", "",
]  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.sampled_from(KNOWN_VALUES),
    st.text(max_size=30),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(KNOWN_NAMES) | st.text(max_size=8), inner, max_size=4),
    ),
    max_leaves=12,
)
bodies = st.dictionaries(
    st.sampled_from(KNOWN_NAMES) | st.text(max_size=8), json_values, max_size=6
)


@settings(max_examples=examples(400), deadline=None)
@given(builder=st.sampled_from(list(c.COMMANDS.values())), body=bodies)
def test_a_body_becomes_encodable_events_or_a_problem_naming_fields(
    builder: c.Builder, body: dict[str, Any]
) -> None:
    try:
        events = builder(Fields(body), CTX)
    except ProblemError as problem:
        assert 400 <= problem.status < 500
        assert problem.errors
        for error in problem.errors:
            assert error["detail"] and error["pointer"].startswith("#/")
            assert isinstance(error["field"], str)
        return
    assert events
    codec = default_codec()
    for event in events:
        assert codec.decode(codec.encode(event)) is not None
