"""The SQL of `consent-ledger rebuild` (services/operations/rebuild.py): fresh copies of the live
tables in a schema of their own, what the switch carries over from the live tables, and the switch.

A copy is `CREATE TABLE ... (LIKE live INCLUDING ALL EXCLUDING INDEXES)` (columns in the same
order, defaults, checks, not-null constraints, identity, comments), then the live table's
primary-key and unique constraints and indexes under their own names, its owner and its
grants: once switched, the table cannot be told from the live one, and a later migration finds
the names it expects. A default drawing from a sequence would keep drawing from the replaced table's
sequence, so such a table is refused; identity columns get their own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import asyncpg

from projections.rebuild_tables import (
    PREVIOUS_PREFIX,
    REBUILT,
    REPLAYED,
    digest_disagreements,
    qualified,
    quote_ident,
    replayed_into,
    tables_of,
    unclassified,
)


class RebuildError(Exception):
    """The rebuild cannot go on; the message says why and what to do. Nothing was switched."""


class SwitchNotNow(Exception):
    """The switch could not take its locks in time, or the live tables moved meanwhile: the
    switch transaction was rolled back and can be tried again."""


async def live_schema(conn: asyncpg.Connection) -> str:
    """The schema the ledger's tables are in (the connection's search path finds them)."""
    found: str | None = await conn.fetchval(
        "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.oid = to_regclass('journal')"
    )
    if found is None:
        raise RebuildError("the database has no journal table: run `consent-ledger init` first")
    return found


async def schema_tables(conn: asyncpg.Connection, schema: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = $1 ORDER BY 1", schema
    )
    return [r["tablename"] for r in rows]


async def check_live(conn: asyncpg.Connection, live: str, topic: str) -> None:
    """Refuse a database the rebuild would not leave whole."""
    names = await schema_tables(conn, live)
    unknown = unclassified(names)
    if unknown:
        raise RebuildError(
            f"table(s) {', '.join(unknown)} are not classified for rebuilds: say in"
            " projections/rebuild_tables.py whether the log rebuilds them (rebuilt), the replay"
            " only writes them (replayed) or they are kept"
        )
    missing = sorted(set(replayed_into()) - set(names))
    if missing:
        raise RebuildError(f"table(s) {', '.join(missing)} are missing: run `consent-ledger init`")
    others = await conn.fetch(
        f"SELECT DISTINCT topic FROM {qualified(live, 'projector_offsets')} WHERE topic <> $1",
        topic,
    )
    if others:
        found = ", ".join(sorted(r["topic"] for r in others))
        raise RebuildError(
            f"the projections also hold topic(s) {found}; a rebuild replays only {topic}"
        )
    serials = await conn.fetch(
        "SELECT c.relname FROM pg_attrdef d JOIN pg_class c ON c.oid = d.adrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = $1 AND c.relname = ANY($2::text[])"
        " AND pg_get_expr(d.adbin, d.adrelid) LIKE 'nextval(%'",
        live,
        list(replayed_into()),
    )
    if serials:
        raise RebuildError(
            f"table(s) {', '.join(sorted({r['relname'] for r in serials}))} draw a default from"
            " a sequence, which the copy would share with the replaced table; use an identity"
            " column"
        )


async def _copy_table(conn: asyncpg.Connection, live: str, target: str, table: str) -> None:
    source, copy = qualified(live, table), qualified(target, table)
    await conn.execute(f"CREATE TABLE {copy} (LIKE {source} INCLUDING ALL EXCLUDING INDEXES)")
    constraints = await conn.fetch(
        "SELECT conname, pg_get_constraintdef(oid) AS definition, conindid FROM pg_constraint"
        " WHERE conrelid = $1::regclass AND contype IN ('p', 'u', 'x') ORDER BY conname",
        source,
    )
    for c in constraints:
        await conn.execute(
            f"ALTER TABLE {copy} ADD CONSTRAINT {quote_ident(c['conname'])} {c['definition']}"
        )
    # qualified names in the definitions: read them with an empty search path
    await conn.execute("SET LOCAL search_path = pg_catalog")
    shown: str = await conn.fetchval("SELECT $1::regclass::text", source)
    indexes = await conn.fetch(
        "SELECT pg_get_indexdef(indexrelid) AS definition FROM pg_index"
        " WHERE indrelid = $1::regclass AND NOT indexrelid = ANY($2::oid[])"
        " ORDER BY indexrelid",
        source,
        [c["conindid"] for c in constraints],
    )
    grants = await conn.fetch(
        "SELECT a.privilege_type, a.is_grantable,"
        " CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END AS grantee"
        " FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) AS a"
        " LEFT JOIN pg_roles r ON r.oid = a.grantee WHERE c.oid = $1::regclass",
        source,
    )
    owner: str = await conn.fetchval(
        "SELECT quote_ident(pg_get_userbyid(relowner)) FROM pg_class WHERE oid = $1::regclass",
        source,
    )
    await conn.execute("RESET search_path")
    # the same owner: a role that may use the live table by owning it may use the copy
    await conn.execute(f"ALTER TABLE {copy} OWNER TO {owner}")
    for index in indexes:
        on = f" ON {shown} "
        if on not in index["definition"]:
            raise RebuildError(f"cannot copy index {index['definition']!r} of {table}")
        await conn.execute(index["definition"].replace(on, f" ON {copy} ", 1))
    for g in grants:
        option = " WITH GRANT OPTION" if g["is_grantable"] else ""
        await conn.execute(f"GRANT {g['privilege_type']} ON {copy} TO {g['grantee']}{option}")


async def create_fresh(conn: asyncpg.Connection, live: str, target: str) -> None:
    """Empty copies of the live tables the replay writes, in a new schema `target` (an older
    one of that name, an interrupted rebuild's, is dropped first)."""
    async with conn.transaction():
        await conn.execute(f"DROP SCHEMA IF EXISTS {quote_ident(target)} CASCADE")
        await conn.execute(f"CREATE SCHEMA {quote_ident(target)}")
        for table in replayed_into():
            await _copy_table(conn, live, target, table)


async def drop_schema(conn: asyncpg.Connection, schema: str) -> None:
    await conn.execute(f"DROP SCHEMA IF EXISTS {quote_ident(schema)} CASCADE")


COLUMNS = """
SELECT c.relname, string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
                             || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END,
                             ', ' ORDER BY a.attnum) AS columns
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE n.nspname = $1 AND c.relkind = 'r' AND c.relname = ANY($2::text[])
GROUP BY c.relname
"""


async def check_same_columns(conn: asyncpg.Connection, live: str, other: str) -> None:
    """The switch needs the same columns in the same order (queries select *, and the API's
    prepared statements must keep their result types)."""
    names = list(replayed_into())
    mine = {r["relname"]: r["columns"] for r in await conn.fetch(COLUMNS, live, names)}
    theirs = {r["relname"]: r["columns"] for r in await conn.fetch(COLUMNS, other, names)}
    differ = sorted(t for t in names if mine.get(t) != theirs.get(t))
    if differ:
        raise RebuildError(
            f"{', '.join(differ)} in {other} differ from the live tables (a migration ran since"
            " they were replaced); rebuild instead"
        )


async def previous_schemas(conn: asyncpg.Connection) -> list[str]:
    rows = await conn.fetch(
        "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, $1) ORDER BY 1",
        PREVIOUS_PREFIX,
    )
    return [r["nspname"] for r in rows]


async def lock_live(conn: asyncpg.Connection, live: str, topic: str) -> dict[int, int]:
    """In the switch transaction: take every partition's digest row, the lock each projector
    batch and the retention job take first, so no batch applies anything until the switch
    commits; returns the live stored offsets, which stay put from here on."""
    await conn.fetch(
        f"SELECT log_partition FROM {qualified(live, 'checkpoint_state')}"
        " WHERE topic = $1 ORDER BY log_partition FOR UPDATE",
        topic,
    )
    return await stored_offsets(conn, live, topic)


async def stored_offsets(conn: asyncpg.Connection, schema: str, topic: str) -> dict[int, int]:
    rows = await conn.fetch(
        f"SELECT log_partition, next_offset FROM {qualified(schema, 'projector_offsets')}"
        " WHERE topic = $1",
        topic,
    )
    return {r["log_partition"]: r["next_offset"] for r in rows}


#: tables with rows per subject that the retention job deletes or keeps
#: (services/proof/retention.py)
_SUBJECT_TABLES: Final = ("journal", "subject_facts", "identifiers", "rights_requests", "erasures")


async def carry_purged(conn: asyncpg.Connection, live: str, incoming: str) -> int:
    """Subjects whose proof the retention job purged keep their live rows: the purge is not in
    the log, and a replay must not bring the purged entries back. Returns how many."""
    subjects = [
        r["subject_id"]
        for r in await conn.fetch(
            f"SELECT subject_id FROM {qualified(live, 'erasures')} WHERE purged_at IS NOT NULL"
        )
    ]
    if not subjects:
        return 0
    mine, theirs = qualified(incoming, "journal"), qualified(live, "journal")
    await conn.execute(
        f"DELETE FROM {qualified(incoming, 'duplicate_records')} WHERE event_id IN"
        f" (SELECT event_id FROM {mine} WHERE subject_id = ANY($1::text[]))",
        subjects,
    )
    await conn.execute(
        f"INSERT INTO {qualified(incoming, 'duplicate_records')}"
        f" SELECT * FROM {qualified(live, 'duplicate_records')} WHERE event_id IN"
        f" (SELECT event_id FROM {theirs} WHERE subject_id = ANY($1::text[]))"
        " ON CONFLICT DO NOTHING",
        subjects,
    )
    for table in _SUBJECT_TABLES:
        await conn.execute(
            f"DELETE FROM {qualified(incoming, table)} WHERE subject_id = ANY($1::text[])",
            subjects,
        )
        await conn.execute(
            f"INSERT INTO {qualified(incoming, table)}"
            f" SELECT * FROM {qualified(live, table)} WHERE subject_id = ANY($1::text[])",
            subjects,
        )
    return len(subjects)


async def carry_feed_outbox(conn: asyncpg.Connection, live: str, incoming: str) -> int:
    """Whatever the live outbox still has to publish is queued in the incoming one too, with a
    change count above the live row's: a publisher that claimed the live row before the switch
    then cannot delete the incoming row (it only deletes a row whose count it read). Returns
    the subjects queued."""
    outbox = qualified(incoming, "state_feed_outbox")
    await conn.execute(f"UPDATE {outbox} SET claimed_until = NULL WHERE claimed_until IS NOT NULL")
    await conn.execute(
        f"INSERT INTO {outbox} AS o (subject_id, log_partition, log_offset, changes, queued_at)"
        " SELECT subject_id, log_partition, log_offset, changes + 1, queued_at"
        f" FROM {qualified(live, 'state_feed_outbox')}"
        " ON CONFLICT (subject_id) DO UPDATE"
        " SET changes = GREATEST(o.changes, EXCLUDED.changes),"
        " queued_at = LEAST(o.queued_at, EXCLUDED.queued_at)"
    )
    queued: int = await conn.fetchval(f"SELECT count(*) FROM {outbox}")
    return queued


async def compare_digests(
    conn: asyncpg.Connection, live: str, incoming: str, topic: str
) -> tuple[int, list[int]]:
    """Whether the replay's running digests equal the live ones: (partitions agreeing, those
    that do not)."""
    rows = await conn.fetch(
        "SELECT l.log_partition, l.next_offset, l.digest, r.next_offset AS r_next,"
        f" r.digest AS r_digest FROM {qualified(live, 'checkpoint_state')} l"
        f" LEFT JOIN {qualified(incoming, 'checkpoint_state')} r"
        " ON r.topic = l.topic AND r.log_partition = l.log_partition"
        " WHERE l.topic = $1",
        topic,
    )
    return digest_disagreements(
        (
            r["log_partition"],
            r["next_offset"],
            bytes(r["digest"]),
            r["r_next"],
            None if r["r_digest"] is None else bytes(r["r_digest"]),
        )
        for r in rows
    )


async def swap(
    conn: asyncpg.Connection,
    *,
    live: str,
    incoming: str,
    previous: str,
    topic: str,
    expected: Mapping[int, int],
    note: str,
) -> None:
    """In the switch transaction: the live rebuilt tables go to `previous`, the incoming ones
    take their place, the incoming replay-only tables go to `previous` with them (so that
    schema can be brought up to date and switched back), and `incoming`, now empty, goes.

    The exclusive locks wait for the queries reading the live tables and hold back new ones
    until the commit; PostgreSQL then plans every statement again, prepared ones included, so
    the same names read the switched tables.
    """
    live_tables = ", ".join(qualified(live, t) for t in tables_of(REBUILT))
    await conn.execute(f"LOCK TABLE {live_tables} IN ACCESS EXCLUSIVE MODE")
    moved = await stored_offsets(conn, live, topic)
    if moved != dict(expected):
        raise SwitchNotNow("the live projector applied a new partition meanwhile")
    await conn.execute(f"CREATE SCHEMA {quote_ident(previous)}")
    await conn.execute(f"COMMENT ON SCHEMA {quote_ident(previous)} IS {_literal(note)}")
    for table in tables_of(REBUILT):
        await conn.execute(
            f"ALTER TABLE {qualified(live, table)} SET SCHEMA {quote_ident(previous)}"
        )
    for table in tables_of(REBUILT):
        await conn.execute(
            f"ALTER TABLE {qualified(incoming, table)} SET SCHEMA {quote_ident(live)}"
        )
    for table in tables_of(REPLAYED):
        await conn.execute(
            f"ALTER TABLE {qualified(incoming, table)} SET SCHEMA {quote_ident(previous)}"
        )
    await conn.execute(f"DROP SCHEMA {quote_ident(incoming)}")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
