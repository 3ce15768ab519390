"""The pure parts of `consent-ledger rebuild`: every table is classified, where the replay
stops per partition, its progress, the names of the schemas it leaves, and its report."""

from __future__ import annotations

import inspect
import random
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from projections import migrate
from projections.log_records import Record
from projections.migrate import migration_files
from projections.rebuild_tables import (
    KEPT,
    PREVIOUS_PREFIX,
    REBUILT,
    REPLAYED,
    TABLES,
    digest_disagreements,
    lag,
    newest_previous,
    previous_schema,
    quote_ident,
    replayed_into,
    split_at_caps,
    tables_of,
    total_records,
    unclassified,
)
from services.cli import main as cli
from services.cli import operator_commands as operator_cli
from services.cli.rebuild_command import summary
from services.operations.rebuild import Outcome

CREATE_TABLE = re.compile(
    r"\bCREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?((?:\"[^\"]+\"|\w+)(?:\.(?:\"[^\"]+\"|\w+))?)",
    re.IGNORECASE,
)


def created_tables(sql: str) -> set[str]:
    """The tables an SQL text creates (schema prefix and quotes dropped)."""
    return {m.group(1).split(".")[-1].strip('"') for m in CREATE_TABLE.finditer(sql)}


def test_the_parser_finds_created_tables() -> None:
    sql = (
        "CREATE TABLE a (x int);\ncreate table if not exists public.b (y int);\n"
        'CREATE TABLE "C" (LIKE a);\n-- CREATE INDEX d ON a (x);\nALTER TABLE e ADD f int;'
    )
    assert created_tables(sql) == {"a", "b", "C"}


def test_every_table_of_the_migrations_is_classified_for_rebuilds() -> None:
    """A new table must say whether a rebuild replaces it (projections/rebuild_tables.py)."""
    found = {
        table: name for name, sql in migration_files() for table in created_tables(sql)
    } | dict.fromkeys(created_tables(inspect.getsource(migrate)), "projections/migrate.py")
    assert found, "no CREATE TABLE found: the parser is broken"
    missing = unclassified(found)
    assert missing == [], "classify in projections/rebuild_tables.py: " + ", ".join(
        f"{t} ({found[t]})" for t in missing
    )
    # and what the replay writes exists
    assert set(replayed_into()) <= set(found)


def test_the_kinds_partition_the_tables() -> None:
    assert set(TABLES.values()) == {REBUILT, REPLAYED, KEPT}
    assert sorted(tables_of(REBUILT) + tables_of(REPLAYED) + tables_of(KEPT)) == sorted(TABLES)
    # data keys live only in PostgreSQL; the published checkpoint chain continues
    assert {"subject_keys", "idempotency_keys", "checkpoint_outbox"} <= set(tables_of(KEPT))
    assert {"checkpoint_state", "metric_histograms", "dead_letter_outbox"} == set(
        tables_of(REPLAYED)
    )
    assert unclassified(["journal", "zz_new", "subject_keys"]) == ["zz_new"]


def records(*pairs: tuple[int, int]) -> list[Record]:
    return [Record(p, o, None, b"v") for p, o in pairs]


@pytest.mark.parametrize(
    ("fetched", "caps", "kept", "beyond"),
    [
        ([], {0: 5}, [], {}),
        ([(0, 3), (0, 4)], {0: 5}, [(0, 3), (0, 4)], {}),
        ([(0, 4), (0, 5), (0, 6)], {0: 5}, [(0, 4)], {0: 5}),
        ([(0, 4), (1, 0), (0, 5), (1, 1)], {0: 5, 1: 9}, [(0, 4), (1, 0), (1, 1)], {0: 5}),
        # a partition the live tables have not seen yet: nothing of it
        ([(2, 0), (2, 1)], {0: 5}, [], {2: 0}),
        # a gap in the offsets (transaction markers): continue from the record found
        ([(0, 2), (0, 9)], {0: 5}, [(0, 2)], {0: 9}),
    ],
)
def test_records_are_split_at_the_caps(
    fetched: list[tuple[int, int]],
    caps: dict[int, int],
    kept: list[tuple[int, int]],
    beyond: dict[int, int],
) -> None:
    assert split_at_caps(records(*fetched), caps) == (records(*kept), beyond)


@given(
    st.dictionaries(st.integers(0, 3), st.integers(0, 30), max_size=4),
    st.dictionaries(st.integers(0, 3), st.integers(0, 30), max_size=4),
    st.randoms(use_true_random=False),
)
def test_the_split_keeps_each_partitions_prefix_below_its_cap(
    lengths: dict[int, int], caps: dict[int, int], rng: random.Random
) -> None:
    per_partition = {p: [(p, o) for o in range(n)] for p, n in lengths.items()}
    fetched: list[tuple[int, int]] = []
    while any(per_partition.values()):  # an interleaving that keeps each partition's order
        p = rng.choice([p for p, left in per_partition.items() if left])
        fetched.append(per_partition[p].pop(0))
    kept, beyond = split_at_caps(records(*fetched), caps)
    assert kept == [r for r in records(*fetched) if r.offset < caps.get(r.partition, 0)]
    assert beyond == {p: caps.get(p, 0) for p, n in lengths.items() if n > caps.get(p, 0)}


@pytest.mark.parametrize(
    ("caps", "positions", "behind"),
    [
        ({}, {}, 0),
        ({0: 10, 1: 5}, {0: 10, 1: 5}, 0),
        ({0: 10, 1: 5}, {0: 4}, 11),
        ({0: 3}, {0: 7}, 0),
    ],
)
def test_lag_counts_the_records_below_the_caps(
    caps: dict[int, int], positions: dict[int, int], behind: int
) -> None:
    assert lag(caps, positions) == behind


def test_the_total_is_the_largest_known_end_of_each_partition() -> None:
    assert total_records({0: 100, 1: None, 2: 7}, {0: 90, 1: 12}, {0: 50, 1: 3, 2: 8}) == 120
    assert total_records({}, {}, {}) == 0


@given(
    st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    ),
    st.timedeltas(min_value=timedelta(microseconds=1), max_value=timedelta(days=3000)),
)
def test_previous_schemas_sort_by_the_time_of_their_switch(at: datetime, later: timedelta) -> None:
    first = previous_schema(at)
    assert first.startswith(PREVIOUS_PREFIX) and len(first) <= 63
    assert re.fullmatch(r"[a-z0-9_]+", first)
    assert previous_schema(at + later) > first


def test_a_previous_schema_is_named_in_utc() -> None:
    at = datetime(2026, 5, 4, 12, 30, 1, 42, tzinfo=timezone(timedelta(hours=3)))
    assert previous_schema(at) == "ledger_previous_20260504_093001_000042"


def test_the_newest_previous_schema_is_chosen() -> None:
    assert newest_previous([]) is None
    assert newest_previous(["public", "ledger_rebuild"]) is None
    names = ["ledger_previous_20260504_093001_000042", "ledger_previous_20260601_000000_000000"]
    assert newest_previous([*reversed(names), "public"]) == names[1]


@pytest.mark.parametrize(
    ("name", "quoted"),
    [("journal", '"journal"'), ('odd"name', '"odd""name"'), ("Mixed Case", '"Mixed Case"')],
)
def test_identifiers_are_quoted(name: str, quoted: str) -> None:
    assert quote_ident(name) == quoted


def test_digests_agree_only_at_the_same_offset_with_the_same_bytes() -> None:
    same, other = b"\x01" * 32, b"\x02" * 32
    rows = [(0, 10, same, 10, same), (1, 10, same, 10, other), (2, 10, same, None, None)]
    assert digest_disagreements(rows) == (1, [1, 2])
    assert digest_disagreements([]) == (0, [])


def outcome(**changes: object) -> Outcome:
    fields: dict[str, object] = {
        "previous": "ledger_previous_20260504_093001_000042",
        "replayed": 12000,
        "seconds": 4.0,
        "attempts": 1,
        "purged": 0,
        "queued": 310,
        "digests_agree": 12,
    }
    return Outcome(**{**fields, **changes})  # type: ignore[arg-type]


def test_the_report_says_where_the_replaced_tables_are_and_how_fast_it_went() -> None:
    text = summary(outcome())
    assert "rebuilt and switched: 12,000 records replayed in 4.0s (3,000 events/s)" in text
    assert "kept in schema ledger_previous_20260504_093001_000042" in text
    assert "--rollback" in text and "--drop-previous" in text
    assert "310 subjects queued" in text
    assert "equal the live ones on all 12 partition(s)" in text
    assert "purged" not in text


def test_the_report_warns_of_digests_that_differ() -> None:
    text = summary(outcome(digests_agree=10, digests_differ=[3, 7], purged=2, rollback=True))
    assert "rolled back and switched" in text
    assert "WARNING" in text and "partition(s) 3, 7" in text
    assert "2 erased subjects' purged proof stays purged" in text


def test_rebuild_uses_a_running_up_and_its_modes_exclude_each_other(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert "rebuild" in operator_cli.SESSION_COMMANDS and "rebuild" in cli.COMMANDS
    with pytest.raises(SystemExit) as exited:
        cli.main(["rebuild", "--rollback", "--drop-previous"])
    assert exited.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "missing"),
    [
        (["rebuild"], "set KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL\n"),
        (["rebuild", "--rollback"], "set KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL\n"),
        (["rebuild", "--drop-previous"], "set DATABASE_URL\n"),
    ],
)
def test_without_servers_rebuild_says_which_to_set(
    argv: list[str],
    missing: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LEDGER_DATA_DIR", str(tmp_path))  # no session file of a running `up`
    assert cli.main(argv) == 2
    assert capsys.readouterr().err.endswith(missing)
