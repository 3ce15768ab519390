"""The subject hash chain and the checkpoint digest: pinned vectors, the definition written out
independently, and properties: any change to any byte, the order, or the set of records
changes the result."""

from __future__ import annotations

import hashlib
import random
import struct

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from projections.hash_chain import (
    GENESIS,
    record_link,
    records_digest,
    subject_chain,
    subject_link,
)
from projections.log_digest import PartitionDigest, advance

values = st.lists(st.binary(max_size=40), min_size=1, max_size=12)


def by_definition(chain: list[bytes]) -> bytes:
    """As docs/auditors/tamper-evidence.md defines it:
    h_n = SHA-256(h_{n-1} || u64be(len(v_n)) || v_n), h_0 = 32 zero bytes."""
    head = b"\x00" * 32
    for value in chain:
        head = hashlib.sha256(head + struct.pack(">Q", len(value)) + value).digest()
    return head


@pytest.mark.parametrize(
    ("chain", "head"),
    [
        ([], "00" * 32),
        ([b""], "2c34ce1df23b838c5abf2a7f6437cca3d3067ed509ff25f11df6b11b582b51eb"),
        ([b"abc"], "8a295b0cbf1f5a594280696ad7707164e2b8beb0e614ad52bc7d78ff8ac12a82"),
        ([b"abc", b"de"], "3910efa4a7402122f1291685ceea12c9a768d52edc3de8fe2f8055fcdc13dc8c"),
    ],
)
def test_subject_chain_vectors(chain: list[bytes], head: str) -> None:
    hashes = subject_chain(chain)
    assert (hashes[-1] if hashes else GENESIS).hex() == head
    assert by_definition(chain).hex() == head


@pytest.mark.parametrize(
    ("offset", "value", "digest"),
    [
        (0, b"abc", "128f59ecdd8170296b6f54cd07205136334b6c04c0c6a2329dccdcf3428fbf19"),
        (7, None, "4d16bc51a26c8de3da0bcbcbc2d351a607d566ef31526af7ca1f89886f2206a5"),
    ],
)
def test_record_link_vectors(offset: int, value: bytes | None, digest: str) -> None:
    assert record_link(GENESIS, offset, value).hex() == digest
    length = struct.pack(">Q", 2**64 - 1 if value is None else len(value))
    expected = hashlib.sha256(GENESIS + struct.pack(">Q", offset) + length + (value or b""))
    assert expected.hexdigest() == digest


def test_length_prefix_separates_values() -> None:
    # without the length, ("ab", "c") and ("a", "bc") could only differ by chance
    assert subject_chain([b"ab", b"c"])[-1] != subject_chain([b"a", b"bc"])[-1]
    assert record_link(GENESIS, 1, b"") != record_link(GENESIS, 1, None)


@given(values)
def test_each_hash_continues_the_previous(chain: list[bytes]) -> None:
    hashes = subject_chain(chain)
    assert hashes[-1] == by_definition(chain)
    for i in range(1, len(chain)):
        assert hashes[i] == subject_link(hashes[i - 1], chain[i])
    assert subject_chain(chain[1:], start=hashes[0]) == hashes[1:]


@given(values, st.data())
def test_any_changed_byte_breaks_the_chain_from_there(
    chain: list[bytes], data: st.DataObject
) -> None:
    index = data.draw(st.integers(0, len(chain) - 1))
    value = chain[index]
    if value:
        at = data.draw(st.integers(0, len(value) - 1))
        bit = data.draw(st.integers(0, 7))
        changed = value[:at] + bytes([value[at] ^ (1 << bit)]) + value[at + 1 :]
    else:
        changed = b"\x00"
    tampered = [*chain[:index], changed, *chain[index + 1 :]]
    original, after = subject_chain(chain), subject_chain(tampered)
    assert original[:index] == after[:index]
    assert all(a != b for a, b in zip(original[index:], after[index:], strict=True))


@given(values, st.randoms(use_true_random=False))
def test_any_reordering_breaks_the_chain(chain: list[bytes], rng: random.Random) -> None:
    reordered = list(chain)
    rng.shuffle(reordered)
    assume(reordered != chain)
    assert subject_chain(reordered)[-1] != subject_chain(chain)[-1]


@given(values, st.data())
def test_a_dropped_or_added_entry_breaks_the_chain(chain: list[bytes], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(chain) - 1))
    dropped = chain[:index] + chain[index + 1 :]
    added = [*chain[:index], data.draw(st.binary(max_size=8)), *chain[index:]]
    head = subject_chain(chain)[-1]
    assert (subject_chain(dropped) or [GENESIS])[-1] != head
    assert subject_chain(added)[-1] != head


records = st.lists(
    st.tuples(st.integers(0, 2**40), st.one_of(st.none(), st.binary(max_size=24))),
    min_size=1,
    max_size=10,
)


@given(records, st.data())
def test_any_change_to_a_record_changes_the_digest(
    recs: list[tuple[int, bytes | None]], data: st.DataObject
) -> None:
    index = data.draw(st.integers(0, len(recs) - 1))
    offset, value = recs[index]
    changed = data.draw(
        st.tuples(st.integers(0, 2**40), st.one_of(st.none(), st.binary(max_size=24))).filter(
            lambda r: r != (offset, value)
        )
    )
    tampered = [*recs[:index], changed, *recs[index + 1 :]]
    assert records_digest(GENESIS, tampered) != records_digest(GENESIS, recs)


@given(records, st.randoms(use_true_random=False))
def test_the_digest_depends_on_record_order(
    recs: list[tuple[int, bytes | None]], rng: random.Random
) -> None:
    reordered = list(recs)
    rng.shuffle(reordered)
    assume(reordered != recs)
    assert records_digest(GENESIS, reordered) != records_digest(GENESIS, recs)


def _state(partition: int = 0, start: int = 0) -> PartitionDigest:
    return PartitionDigest(partition, start, start, 0, GENESIS, GENESIS)


@given(st.lists(st.one_of(st.none(), st.binary(max_size=16)), max_size=20), st.data())
def test_the_running_digest_is_the_same_however_the_batches_fall(
    vals: list[bytes | None], data: st.DataObject
) -> None:
    recs = list(enumerate(vals))
    whole = advance(_state(), recs)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(recs)), max_size=4)))
    state = _state()
    for start, end in zip([0, *cuts], [*cuts, len(recs)], strict=True):
        # a batch re-read after a crash repeats records: those already applied are skipped
        state = advance(state, recs[max(0, start - 2) : end])
    assert state == whole
    assert whole.digest == records_digest(GENESIS, recs)
    assert (whole.record_count, whole.next_offset) == (len(recs), len(recs) or 0)


def test_advance_keeps_a_state_without_new_records() -> None:
    state = advance(_state(start=5), [(3, b"old"), (4, None)])
    assert state == _state(start=5)
