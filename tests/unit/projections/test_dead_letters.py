"""Dead-letter records: their headers name the source position and the error, and read back."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from projections import dead_letters
from projections.dead_letters import REASONS, UNAUTHENTICATED, UNDECODABLE, DeadLetter


def test_headers_are_exact() -> None:
    letter = DeadLetter(
        "consent.events", 3, 41, "bad magic bytes", b"k", b"\x00garbage", UNDECODABLE
    )
    assert dead_letters.headers(letter) == [
        ("source_topic", b"consent.events"),
        ("source_partition", b"3"),
        ("source_offset", b"41"),
        ("error", b"bad magic bytes"),
        ("reason", b"undecodable-record"),
    ]


def test_a_letter_published_before_reasons_existed_reads_as_undecodable() -> None:
    old = [
        ("source_topic", b"consent.events"),
        ("source_partition", b"0"),
        ("source_offset", b"7"),
        ("error", b"bad magic bytes"),
    ]
    assert dead_letters.from_record(None, b"x", old).reason == UNDECODABLE


def test_the_reasons_are_distinct_machine_words() -> None:
    assert len(set(REASONS)) == len(REASONS)
    assert UNAUTHENTICATED == "unauthenticated-record"
    assert all(reason.isascii() and " " not in reason for reason in REASONS)


@given(
    topic=st.text(min_size=1, max_size=50),
    partition=st.integers(0, 10_000),
    offset=st.integers(0, 2**62),
    error=st.text(max_size=200),
    key=st.none() | st.binary(max_size=64),
    value=st.none() | st.binary(max_size=256),
    reason=st.sampled_from(REASONS),
)
def test_a_dead_letter_reads_back_from_its_record(
    topic: str,
    partition: int,
    offset: int,
    error: str,
    key: bytes | None,
    value: bytes | None,
    reason: str,
) -> None:
    letter = DeadLetter(topic, partition, offset, error, key, value, reason)
    assert dead_letters.from_record(key, value, dead_letters.headers(letter)) == letter


def test_a_long_error_is_cut_to_the_bound() -> None:
    letter = DeadLetter("t", 0, 0, "x" * 5000, None, None, UNDECODABLE)
    (error,) = [v for k, v in dead_letters.headers(letter) if k == "error"]
    assert len(error) == dead_letters.MAX_ERROR_BYTES
