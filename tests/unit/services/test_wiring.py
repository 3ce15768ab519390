"""One place opens connections and producers (services/bootstrap.py): the sources of services/
and projections/ are parsed to hold that no other module connects to PostgreSQL or builds a
Kafka producer or consumer itself; the others receive what they use."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SCANNED = ("services", "projections")
#: the modules that may open a connection or build a client
OPENERS = frozenset(
    {
        "services/bootstrap.py",
        # the factories themselves, which bootstrap calls
        "services/ledger/kafka_clients.py",
        "services/ledger/publisher.py",
        "services/db_pool.py",
        # metadata questions (create or describe a topic, its high-water marks): a client
        # opened and closed within one call, built by the Kafka factory
        "services/ledger/topic.py",
    }
)
#: what opens a connection or builds a client, by the module that provides it
OPENING = {
    "asyncpg": frozenset({"connect", "create_pool"}),
    "services.db_pool": frozenset({"open_pool", "TimedPool"}),
    "services.ledger.publisher": frozenset({"make_producer"}),
    "services.ledger.kafka_clients": frozenset({"new_producer", "new_consumer", "new_admin"}),
}


def openings(source: str) -> list[str]:
    """`line: what` for every name of OPENING that `source` imports or reaches as an attribute
    of its module (`asyncpg.connect`, `kafka_clients.new_consumer`)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            found += [
                f"{node.lineno}: from {module} import {alias.name}"
                for alias in node.names
                if alias.name in OPENING.get(module, ())
            ]
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            modules = [m for m in OPENING if m.rsplit(".", 1)[-1] == node.value.id]
            if any(node.attr in OPENING[m] for m in modules):
                found.append(f"{node.lineno}: {node.value.id}.{node.attr}")
    return found


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("conn = await asyncpg.connect(url)", ["1: asyncpg.connect"]),
        ("pool = await asyncpg.create_pool(url)", ["1: asyncpg.create_pool"]),
        ("from asyncpg import connect", ["1: from asyncpg import connect"]),
        ("from services.db_pool import open_pool", ["1: from services.db_pool import open_pool"]),
        (
            "from services.ledger.publisher import Publisher, make_producer",
            ["1: from services.ledger.publisher import make_producer"],
        ),
        (
            "from services.ledger.kafka_clients import new_admin",
            ["1: from services.ledger.kafka_clients import new_admin"],
        ),
        ("c = kafka_clients.new_consumer(kafka)", ["1: kafka_clients.new_consumer"]),
        ("f = partial(asyncpg.connect, url)", ["1: asyncpg.connect"]),
        # receiving is fine: a parameter called like the factory, types, the pool's methods
        ("consumer = new_consumer(group_id='g')", []),
        ("def f(conn: asyncpg.Connection, pool: asyncpg.Pool) -> None: ...", []),
        ("rows = await pool.fetch(sql)", []),
        ("conn = await connect()", []),
        ("from services.bootstrap import connect_database", []),
    ],
)
def test_openings_are_found(source: str, found: list[str]) -> None:
    assert openings(source) == found


def test_only_the_openers_open_connections() -> None:
    scanned = sorted(p for top in SCANNED for p in (ROOT / top).rglob("*.py"))
    assert len(scanned) > 100
    opening = {
        name: found
        for path in scanned
        if (name := path.relative_to(ROOT).as_posix()) not in OPENERS
        and (found := openings(path.read_text(encoding="utf-8")))
    }
    assert opening == {}, "receive connections from services/bootstrap.py instead"


def test_bootstrap_opens_them() -> None:
    found = openings((ROOT / "services" / "bootstrap.py").read_text(encoding="utf-8"))
    assert {line.split(": ", 1)[1] for line in found} == {
        "asyncpg.connect",
        "from services.db_pool import open_pool",
        "from services.ledger.publisher import make_producer",
        "kafka_clients.new_consumer",
    }
