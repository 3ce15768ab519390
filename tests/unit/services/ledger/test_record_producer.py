"""Every record the ledger produces goes through services/ledger/record_producer.py: new records get
the MAC header of their role, records produced again keep their headers exactly."""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path
from typing import Any

import pytest

from schemas.record_mac import CHECKS, EVENTS, MAC_HEADER, ROLES, RecordMacs, Verdict
from services.identity.secrets import parse_key_ring
from services.ledger.record_producer import RecordProducer, produce_as_written, writer_macs

ROOT = Path(__file__).resolve().parents[4]
#: methods of aiokafka's producer that put a record on a topic
SENDING = {"send", "send_and_wait", "send_batch", "create_batch"}
THE_ONE_PLACE = ROOT / "services" / "ledger" / "record_producer.py"
MACS = RecordMacs({"w1": bytes(32)}, "w1")


def sending_calls(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        f"{path.relative_to(ROOT)}:{node.lineno} .{node.func.attr}()"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in SENDING
    ]


def test_no_record_is_produced_anywhere_else() -> None:
    found = [
        call
        for package in ("services", "projections", "schemas")
        for path in sorted((ROOT / package).rglob("*.py"))
        if path != THE_ONE_PLACE
        for call in sending_calls(path)
    ]
    assert found == [], "produce through services/ledger/record_producer.py, which MACs the record"
    assert sending_calls(THE_ONE_PLACE)  # the check looks for the right thing


class FakeProducer:
    """What the producer was asked to send; each send acknowledged at once."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.batches: list[tuple[list[dict[str, Any]], str, int]] = []

    async def send(self, topic: str, **record: Any) -> asyncio.Future[int]:
        self.sent.append({"topic": topic, **record})
        return self._acked()

    def create_batch(self) -> FakeBatch:
        return FakeBatch()

    async def send_batch(self, batch: FakeBatch, topic: str, *, partition: int) -> Any:
        self.batches.append((batch.records, topic, partition))
        return self._acked()

    @staticmethod
    def _acked() -> asyncio.Future[int]:
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        done.set_result(0)
        return done


class FakeBatch:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def append(self, **record: Any) -> None:
        self.records.append(record)

    def close(self) -> None:
        pass


@pytest.mark.parametrize("role", ROLES)
async def test_a_new_record_carries_the_mac_of_its_role(role: str) -> None:
    fake = FakeProducer()
    producer = RecordProducer(fake, MACS)
    headers = [("event_type", b"ConsentGranted")]
    await producer.produce("topic-x", role, key=b"k", value=b"v", headers=headers, partition=2)
    (sent,) = fake.sent
    assert (sent["topic"], sent["key"], sent["value"], sent["partition"]) == (
        "topic-x",
        b"k",
        b"v",
        2,
    )
    assert [name for name, _ in sent["headers"]] == ["event_type", MAC_HEADER]
    assert MACS.verify(role, b"k", b"v", sent["headers"]) is Verdict.VALID
    others = [r for r in ROLES if r != role]
    assert all(MACS.verify(r, b"k", b"v", sent["headers"]) is Verdict.WRONG for r in others)


async def test_a_record_produced_again_keeps_its_headers_exactly() -> None:
    fake = FakeProducer()
    forged = [("event_type", b"ConsentGranted")]  # no MAC: it must not get one now
    stale = [*forged, (MAC_HEADER, b"v1:w9:" + b"A" * 43)]
    for headers in (forged, stale):
        await produce_as_written(
            fake,
            "t",
            key=b"k",
            value=b"v",
            headers=headers,
            partition=0,
            timestamp_ms=5,
        )
    assert [s["headers"] for s in fake.sent] == [forged, stale]
    assert [s["timestamp_ms"] for s in fake.sent] == [5, 5]


async def test_a_record_with_neither_key_nor_value_goes_in_a_batch_of_its_own() -> None:
    fake = FakeProducer()
    producer = RecordProducer(fake, MACS)
    await producer.produce("t", EVENTS, key=None, value=None, partition=3)
    ((records, topic, partition),) = fake.batches
    assert (topic, partition, fake.sent) == ("t", 3, [])
    (record,) = records
    assert MACS.verify(EVENTS, None, None, record["headers"]) is Verdict.VALID
    with pytest.raises(ValueError, match="partition"):
        await producer.produce("t", CHECKS, key=None, value=None)


def test_the_writer_key_ring_becomes_macs() -> None:
    ring = parse_key_ring("LEDGER_WRITER_KEYS", "w2:" + "B" * 43 + ",w1:" + "A" * 43)
    macs = writer_macs(ring)
    assert macs.current_id == "w2"
    old = writer_macs(parse_key_ring("LEDGER_WRITER_KEYS", "w1:" + "A" * 43))
    record = old.seal(EVENTS, b"k", b"v", [])
    assert macs.verify(EVENTS, b"k", b"v", record) is Verdict.VALID
