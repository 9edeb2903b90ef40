"""The live schema, the account's grants and what could block an ALTER; read-only, over PyMySQL.

Without the PROCESS privilege MySQL silently shows only the account's own sessions, so "no blockers" is
only ever said when the privilege is there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from todobox_deploy.db.grants import grants_cover
from todobox_deploy.db.schema import Connection, Rows, current_grants, query, quote_ident


@dataclass(frozen=True)
class LiveTables:
    """Columns (name -> COLUMN_TYPE) and indexes (name -> (columns, unique)) per table, lower-case names."""

    columns: dict[str, dict[str, str]]
    indexes: dict[str, dict[str, tuple[tuple[str, ...], bool]]]
    alembic: tuple[str, ...] | None  # None: no alembic_version table (or not visible)


def read_live_tables(conn: Connection, database: str) -> LiveTables:
    """Every visible table's columns and indexes in ``database``, and the alembic_version rows."""
    columns: dict[str, dict[str, str]] = {}
    cols = query(
        conn,
        "SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE FROM INFORMATION_SCHEMA.COLUMNS "
        "WHERE TABLE_SCHEMA = %s ORDER BY TABLE_NAME, ORDINAL_POSITION",
        (database,),
    )
    for table, column, ctype in cols.rows:
        columns.setdefault(table.lower(), {})[column.lower()] = ctype.lower()
    parts: dict[tuple[str, str], list[tuple[int, str, bool]]] = {}
    stats = query(
        conn,
        "SELECT TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX, COLUMN_NAME, NON_UNIQUE "
        "FROM INFORMATION_SCHEMA.STATISTICS WHERE TABLE_SCHEMA = %s",
        (database,),
    )
    for table, name, seq, column, non_unique in stats.rows:
        parts.setdefault((table.lower(), name.lower()), []).append(
            (int(seq), column.lower(), non_unique == "0")
        )
    indexes: dict[str, dict[str, tuple[tuple[str, ...], bool]]] = {}
    for (table, name), cols_of in parts.items():
        ordered = sorted(cols_of)
        indexes.setdefault(table, {})[name] = (tuple(c for _, c, _ in ordered), ordered[0][2])
    alembic: tuple[str, ...] | None = None
    if "alembic_version" in columns:
        rows = query(conn, f"SELECT version_num FROM {quote_ident(database)}.`alembic_version`")
        alembic = tuple(r[0] for r in rows.rows)
    return LiveTables(columns, indexes, alembic)


def grants(conn: Connection) -> list[str]:
    """The current account's ``SHOW GRANTS`` lines."""
    return list(current_grants(conn))


_ON = re.compile(r"^GRANT (.+?) ON (\S+) TO ", re.IGNORECASE)


def has_privilege(grant_lines: list[str], privilege: str, database: str | None = None) -> bool:
    """Whether the grants give ``privilege`` globally (or on ``database`` when given)."""
    scopes = {"*.*"}
    if database is not None:
        scopes |= {f"`{database}`.*", f"{database}.*"}
    for line in grant_lines:
        m = _ON.match(line)
        if not m or m.group(2) not in scopes:
            continue
        privileges = {p.strip().upper() for p in m.group(1).split(",")}
        if "ALL PRIVILEGES" in privileges or privilege.upper() in privileges:
            return True
    return False


def can_see_whole_schema(grant_lines: list[str], database: str) -> bool:
    """With a table-level privilege on the schema (or globally), a table absent from INFORMATION_SCHEMA
    really is absent (see :func:`todobox_deploy.db.grants.grants_cover`)."""
    return grants_cover(grant_lines, database)


def blockers(conn: Connection, database: str, min_seconds: int = 0) -> Rows:
    """Open transactions and running statements in ``database`` that an ALTER would wait behind.

    Only meaningful with the PROCESS privilege (check :func:`has_privilege` first)."""
    return query(
        conn,
        "SELECT p.ID, p.USER, p.HOST, p.COMMAND, p.TIME, p.STATE, LEFT(p.INFO, 120) AS INFO, "
        "t.trx_started FROM INFORMATION_SCHEMA.PROCESSLIST p "
        "LEFT JOIN INFORMATION_SCHEMA.INNODB_TRX t ON t.trx_mysql_thread_id = p.ID "
        "WHERE p.DB = %s AND p.ID <> CONNECTION_ID() "
        "AND (t.trx_id IS NOT NULL OR (p.COMMAND = 'Query' AND p.TIME >= %s)) ORDER BY p.TIME DESC",
        (database, min_seconds),
    )


def checksum(conn: Connection, database: str, table: str) -> str | None:
    """``CHECKSUM TABLE`` of one table (None when the server cannot tell)."""
    rows = query(conn, f"CHECKSUM TABLE {quote_ident(database)}.{quote_ident(table)}")
    value = rows.rows[0][1] if rows.rows else "NULL"
    return None if value == "NULL" else value
