"""Consistency tokens round-trip and refuse foreign text; subjects map to partitions exactly as
Kafka's default partitioner puts their records."""

from __future__ import annotations

import pytest
from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from schemas.events import SUBJECT_ID_RE
from services.ledger.partitioning import partition_for
from services.ledger.tokens import TokenError, decode_token, encode_token


@given(st.integers(0, 999_999), st.integers(0, 2**62))
def test_token_round_trip(partition: int, position: int) -> None:
    token = encode_token(partition, position)
    assert decode_token(token) == (partition, position)
    assert token.isascii() and "=" not in token


@pytest.mark.parametrize("text", ["", "nonsense", "YzEuMQ", "c1.1.2", "!!!", "YzIuMS4y"])
def test_foreign_text_is_not_a_token(text: str) -> None:
    with pytest.raises(TokenError):
        decode_token(text)


@given(st.from_regex(SUBJECT_ID_RE, fullmatch=True), st.sampled_from([1, 4, 12, 50]))
def test_partition_matches_the_producers_default_partitioner(subject: str, partitions: int) -> None:
    every = list(range(partitions))
    expected = DefaultPartitioner()(subject.encode("utf-8"), every, every)
    assert partition_for(subject, partitions) == expected
