"""Read-only schema evidence from a live MySQL/MariaDB connection (PyMySQL, any transport).

Results are parsed by column name, never by position: SHOW INDEX differs between MariaDB and MySQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from todobox_deploy.db.grants import visibility_gap


class Cursor(Protocol):
    description: Any

    def execute(self, query: str, args: Any = ...) -> int: ...
    def fetchall(self) -> Sequence[Any]: ...
    def __enter__(self) -> Cursor: ...
    def __exit__(self, *exc: object) -> None: ...


class Connection(Protocol):
    def cursor(self) -> Any: ...


def quote_ident(name: str) -> str:
    """Quote a MySQL identifier with backticks; reject what no sane schema uses."""
    if not name or "\x00" in name or len(name) > 64:
        raise ValueError(f"not a valid MySQL identifier: {name!r}")
    return "`" + name.replace("`", "``") + "`"


@dataclass(frozen=True)
class Rows:
    """A result set: column names and rows as tuples of strings (None shown as NULL)."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]

    def dicts(self) -> list[dict[str, str]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]

    def render(self) -> list[str]:
        """Render as an aligned text table, one string per line (like the mysql client)."""
        if not self.columns:
            return ["(no result)"]
        if not self.rows:
            return ["Empty set"]
        widths = [len(c) for c in self.columns]
        for row in self.rows:
            widths = [max(w, len(v)) for w, v in zip(widths, row, strict=True)]
        rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

        def line(values: Sequence[str]) -> str:
            return "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)) + " |"

        out = [rule, line(self.columns), rule, *(line(r) for r in self.rows), rule]
        out.append(f"{len(self.rows)} row{'s' if len(self.rows) != 1 else ''} in set")
        return out


def _text(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def query(conn: Connection, sql: str, args: Sequence[object] | None = None) -> Rows:
    """Run one read-only statement and return its rows as text."""
    with conn.cursor() as cur:
        cur.execute(sql, args)
        columns = tuple(d[0] for d in cur.description or ())
        rows = tuple(tuple(_text(v) for v in row) for row in cur.fetchall())
    return Rows(columns, rows)


@dataclass(frozen=True)
class SchemaFacts:
    """What the database says about the migration's table, column, index and Alembic version."""

    database: str
    table: str
    column: str
    server_version: str
    table_exists: bool
    describe: Rows
    column_rows: Rows  # the INFORMATION_SCHEMA check for the column
    index_rows: Rows  # SHOW INDEX ... WHERE Column_name = column
    alembic_table_exists: bool
    alembic_versions: tuple[str, ...]
    # Why an absence proves nothing (the account's grants do not cover it), or None: absent means absent.
    table_gap: str | None = None  # the table, and any column or index in it
    alembic_gap: str | None = None  # the alembic_version table

    @property
    def column_present(self) -> bool:
        return bool(self.column_rows.rows)

    def index_names(self) -> tuple[str, ...]:
        return tuple(sorted({r["Key_name"] for r in self.index_rows.dicts()}))

    def unique_index_present(self, name: str | None = None) -> bool:
        for r in self.index_rows.dicts():
            if r.get("Non_unique") == "0" and (name is None or r.get("Key_name") == name):
                return True
        return False

    @property
    def alembic_version(self) -> str | None:
        """The single applied revision, or None for none or several (several means multiple heads)."""
        return self.alembic_versions[0] if len(self.alembic_versions) == 1 else None


def inspect_schema(
    conn: Connection, database: str, table: str, column: str, user: str = "the DB user"
) -> SchemaFacts:
    """Collect the pre/post-migration evidence of checklist steps 4 and 6 in one pass, with the account's
    grants: an absence they do not cover is recorded as a gap (``table_gap``, ``alembic_gap``)."""
    db_q, table_q = quote_ident(database), quote_ident(table)
    version = query(conn, "SELECT VERSION() AS version").rows[0][0]
    grants = current_grants(conn)
    exists = query(
        conn,
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA=%s AND TABLE_NAME=%s",
        (database, table),
    )
    table_exists = bool(exists.rows)
    empty = Rows((), ())
    describe = query(conn, f"DESCRIBE {db_q}.{table_q}") if table_exists else empty
    column_rows = query(
        conn,
        "SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_KEY FROM information_schema.COLUMNS"
        " WHERE TABLE_SCHEMA=%s AND TABLE_NAME=%s AND COLUMN_NAME=%s",
        (database, table, column),
    )
    index_rows = (
        query(conn, f"SHOW INDEX FROM {db_q}.{table_q} WHERE Column_name=%s", (column,))
        if table_exists
        else empty
    )
    alembic = query(
        conn,
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA=%s"
        " AND TABLE_NAME='alembic_version'",
        (database,),
    )
    versions: tuple[str, ...] = ()
    if alembic.rows:
        versions = tuple(r[0] for r in query(conn, f"SELECT version_num FROM {db_q}.`alembic_version`").rows)
    return SchemaFacts(
        database=database,
        table=table,
        column=column,
        server_version=version,
        table_exists=table_exists,
        describe=describe,
        column_rows=column_rows,
        index_rows=index_rows,
        alembic_table_exists=bool(alembic.rows),
        alembic_versions=versions,
        table_gap=visibility_gap(grants, database, table, table_exists, user),
        alembic_gap=None
        if alembic.rows
        else visibility_gap(grants, database, "alembic_version", False, user),
    )


# -- read-only helpers for the post-migration verification ----------------------------------------


def sql_literal(value: str) -> str:
    """A string as a quoted SQL literal, for showing a query the way it ran (never for building one)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def visible_tables(conn: Connection, database: str) -> tuple[str, ...]:
    """SHOW TABLES FROM the database: what this user can see (tables it holds no privilege on are hidden)."""
    return tuple(r[0] for r in query(conn, f"SHOW TABLES FROM {quote_ident(database)}").rows)


def current_grants(conn: Connection) -> tuple[str, ...]:
    """SHOW GRANTS for the connected account, one GRANT statement per entry."""
    return tuple(r[0] for r in query(conn, "SHOW GRANTS").rows)


def column_type_rows(conn: Connection, database: str, table: str, column: str) -> Rows:
    """INFORMATION_SCHEMA.COLUMNS for one column: name, COLUMN_TYPE, nullability, key."""
    return query(
        conn,
        "SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_KEY FROM information_schema.COLUMNS"
        " WHERE TABLE_SCHEMA=%s AND TABLE_NAME=%s AND COLUMN_NAME=%s",
        (database, table, column),
    )


def show_columns(conn: Connection, table: str, column: str) -> Rows:
    """``SHOW COLUMNS FROM `table` WHERE Field = 'column'`` in the connection's database."""
    return query(conn, f"SHOW COLUMNS FROM {quote_ident(table)} WHERE Field = %s", (column,))


def show_index(conn: Connection, table: str, *, column: str | None = None, key: str | None = None) -> Rows:
    """``SHOW INDEX FROM `table` WHERE Column_name = ...`` (or ``Key_name = ...``) in the connection's DB."""
    if (column is None) == (key is None):
        raise ValueError("show_index needs exactly one of column= or key=")
    field, value = ("Column_name", column) if column is not None else ("Key_name", key)
    return query(conn, f"SHOW INDEX FROM {quote_ident(table)} WHERE {field} = %s", (value,))


def alembic_version_rows(conn: Connection) -> tuple[str, ...]:
    """Every ``version_num`` in the connection database's ``alembic_version`` table."""
    return tuple(r[0] for r in query(conn, "SELECT version_num FROM `alembic_version`").rows)
