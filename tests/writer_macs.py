"""The test session's writer keys (tests/conftest.py TEST_SECRETS) as MACs: the tests produce
records as the ledger would, so the projector applies them (schemas/record_mac.py)."""

from __future__ import annotations

from collections.abc import Sequence

from projections.log_records import Record
from schemas.record_mac import EVENTS, Header, RecordMacs
from services.identity.secrets import parse_key_ring
from services.ledger.record_producer import writer_macs
from tests.conftest import TEST_SECRETS

TEST_MACS: RecordMacs = writer_macs(
    parse_key_ring("LEDGER_WRITER_KEYS", TEST_SECRETS["LEDGER_WRITER_KEYS"])
)


def sealed(key: bytes | None, value: bytes | None, headers: Sequence[Header] = ()) -> list[Header]:
    """The headers of an event-topic record as the ledger writes it, MAC header last."""
    return TEST_MACS.seal(EVENTS, key, value, headers)


def sealed_record(
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[Header] = (),
) -> Record:
    """A record built by hand that carries a valid MAC."""
    return Record(partition, offset, key, value, sealed(key, value, headers))
