"""Checklist step 6, "Verify Migration Completed": alembic_version and each expected column and index.

Read-only. Evidence fails closed: a table or column the DB user cannot see (its grants do not cover
it) is "cannot verify", never "missing"; a query the server refuses is "cannot verify" with its reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from todobox_deploy.config import ExpectedSchema
from todobox_deploy.core.outcome import Fact, PhaseOutcome, PhaseStatus
from todobox_deploy.db.grants import grants_cover, missing_grant
from todobox_deploy.db.schema import (
    Rows,
    alembic_version_rows,
    column_type_rows,
    current_grants,
    quote_ident,
    show_columns,
    show_index,
    sql_literal,
    visible_tables,
)
from todobox_deploy.engine.phases.spec import PhaseCall

Verdict = Literal["ok", "warning", "failed", "cannot verify"]
Show = Callable[[str, Rows], None]


@dataclass(frozen=True)
class Check:
    """One judged piece of evidence: its label, what was observed, the verdict and the problem if any."""

    label: str
    observed: str
    verdict: Verdict = "ok"
    problem: str = ""
    source: str = ""  # the probe that observed it

    @property
    def shown(self) -> str:
        return self.observed if self.verdict == "ok" else f"{self.observed} ({self.verdict})"

    def fact(self, *, decisive: bool = True) -> Fact:
        """The check as evidence: "cannot verify" (with the reason) or observed."""
        if self.verdict == "cannot verify":
            return Fact(self.label, self.shown, "cannot verify", self.problem or self.source, decisive)
        return Fact(self.label, self.shown, "observed", self.source, decisive)


# -- judging the evidence (pure) ----------------------------------------------------------------------


def judge_alembic(versions: Sequence[str], expected: str) -> Check:
    """alembic_version must hold exactly one row, the expected head."""
    observed = ", ".join(versions) or "(no row)"
    if not versions:
        return Check(
            "alembic_version", observed, "failed", "alembic_version has no row: the DB is not stamped"
        )
    if len(versions) > 1:
        return Check(
            "alembic_version",
            observed,
            "failed",
            f"alembic_version has {len(versions)} rows ({observed}): multiple heads applied",
        )
    if versions[0] != expected:
        return Check(
            "alembic_version", observed, "failed", f"alembic_version is {versions[0]}, not {expected}"
        )
    return Check("alembic_version", observed)


_INT_WIDTH = re.compile(r"^(tinyint|smallint|mediumint|int|integer|bigint)\(\d+\)")


def normalize_type(column_type: str) -> str:
    """COLUMN_TYPE for comparison: lower case, single spaces, no integer display width (MySQL 8 drops it)."""
    return _INT_WIDTH.sub(r"\1", " ".join(column_type.lower().split()))


def judge_column(expect: ExpectedSchema, rows: Rows, definite: bool) -> Check:
    """The column must exist (and have the expected type); absence counts only when the grants cover it."""
    label = f"{expect.table}.{expect.column}"
    found = rows.dicts()
    if not found:
        if not definite:
            return Check(
                label,
                "not visible",
                "cannot verify",
                f"cannot verify {label}: the DB user's grants do not cover the table, so a missing column "
                "and a hidden one look the same",
            )
        return Check(label, "MISSING", "failed", f"{label} is MISSING")
    column_type = found[0].get("COLUMN_TYPE", "")
    nullable = "NULL" if found[0].get("IS_NULLABLE") == "YES" else "NOT NULL"
    observed = f"{column_type} {nullable}"
    if expect.type and normalize_type(column_type) != normalize_type(expect.type):
        return Check(label, observed, "failed", f"{label} is {column_type}, expected {expect.type}")
    return Check(label, observed)


def _key_columns(rows: Sequence[dict[str, str]]) -> list[str]:
    ordered = sorted(rows, key=lambda r: int(r.get("Seq_in_index", "0") or 0))
    return [r.get("Column_name", "?") for r in ordered]


def _describe_key(name: str, rows: Sequence[dict[str, str]]) -> str:
    unique = all(r.get("Non_unique") == "0" for r in rows)
    return f"{name}: {'unique' if unique else 'non-unique'} on ({', '.join(_key_columns(rows))})"


def judge_index(expect: ExpectedSchema, keys: dict[str, list[dict[str, str]]], definite: bool) -> Check:
    """The expected index must exist, cover exactly the column (whole, not a prefix) and be unique when
    asked. ``keys`` maps index names to their SHOW INDEX rows (every column of each index)."""
    col = expect.column
    label = f"index {expect.index}" if expect.index else f"unique index on {expect.table}.{col}"
    if expect.index:
        rows = keys.get(expect.index, [])
        candidates = [(expect.index, rows)] if rows else []
    else:
        candidates = [(name, rows) for name, rows in keys.items() if _key_columns(rows) == [col]]
        candidates = [(n, r) for n, r in candidates if all(x.get("Non_unique") == "0" for x in r)]
    if not candidates:
        if not definite:
            return Check(
                label,
                "not visible",
                "cannot verify",
                f"cannot verify {label}: the grants do not cover the table",
            )
        observed = "; ".join(_describe_key(n, r) for n, r in keys.items()) or "MISSING"
        missing = f"{label} is MISSING" + (f" (found {observed})" if keys else "")
        return Check(label, observed if keys else "MISSING", "failed", missing)
    name, rows = candidates[0]
    observed = _describe_key(name, rows)
    if expect.index:
        observed = observed.partition(": ")[2]  # the label names it already
    columns = _key_columns(rows)
    if columns != [col]:
        return Check(label, observed, "failed", f"{label} covers ({', '.join(columns)}), not ({col})")
    prefix = rows[0].get("Sub_part", "NULL")
    if prefix not in ("", "NULL"):
        return Check(label, observed, "failed", f"{label} covers only the first {prefix} characters of {col}")
    if expect.unique and any(r.get("Non_unique") != "0" for r in rows):
        return Check(label, observed, "failed", f"{label} is not unique")
    return Check(label, observed)


def conclude(checks: Sequence[Check]) -> PhaseOutcome:
    """OK when every check passed; FAILED naming each failed or unverifiable check otherwise."""
    facts = [c.fact() for c in checks]
    problems = [c.problem or f"{c.label}: {c.verdict}" for c in checks if c.verdict != "ok"]
    if not checks:
        return PhaseOutcome.of(PhaseStatus.FAILED, "cannot verify: no check ran", facts)
    if problems:
        return PhaseOutcome.of(PhaseStatus.FAILED, "; ".join(problems), facts)
    verified = "; ".join(f"{c.label} {c.observed}" for c in checks)
    return PhaseOutcome.of(PhaseStatus.OK, f"migration verified: {verified}", facts)


# -- collecting the evidence ----------------------------------------------------------------------------


def _db_errors() -> tuple[type[Exception], ...]:
    import pymysql

    return (pymysql.err.MySQLError,)


def _reason(exc: Exception) -> str:
    args: tuple[object, ...] = exc.args
    if len(args) == 2 and isinstance(args[0], int):
        return f"({args[0]}) {args[1]}"
    return str(exc) or type(exc).__name__


def _schema_checks(
    conn: Any, database: str, expect: ExpectedSchema, definite: bool, show: Show
) -> list[Check]:
    table, col = expect.table, expect.column
    t = quote_ident(table)
    show(f"SHOW COLUMNS FROM {t} WHERE Field = {sql_literal(col)};", show_columns(conn, table, col))
    columns = column_type_rows(conn, database, table, col)
    show(
        "SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_KEY FROM INFORMATION_SCHEMA.COLUMNS WHERE"
        f" TABLE_SCHEMA = {sql_literal(database)} AND TABLE_NAME = {sql_literal(table)}"
        f" AND COLUMN_NAME = {sql_literal(col)};",
        columns,
    )
    checks = [judge_column(expect, columns, definite)]
    by_column = show_index(conn, table, column=col)
    show(f"SHOW INDEX FROM {t} WHERE Column_name = {sql_literal(col)};", by_column)
    if not (expect.index or expect.unique):
        return checks
    names = [expect.index] if expect.index else sorted({r["Key_name"] for r in by_column.dicts()})
    keys: dict[str, list[dict[str, str]]] = {}
    for name in names:
        rows = show_index(conn, table, key=name)
        show(f"SHOW INDEX FROM {t} WHERE Key_name = {sql_literal(name)};", rows)
        if rows.rows:
            keys[name] = rows.dicts()
    checks.append(judge_index(expect, keys, definite))
    return checks


@dataclass(frozen=True)
class Evidence:
    """The judged checks, and the alembic_version rows when they could be read."""

    checks: tuple[Check, ...]
    versions: tuple[str, ...] | None = None


def collect(
    conn: Any, database: str, expected_head: str, expect: Sequence[ExpectedSchema], show: Show
) -> Evidence:
    """Run the read-only queries (showing each) and judge them; a refused query is "cannot verify"."""
    errors = _db_errors()
    try:
        tables = set(visible_tables(conn, database))
        grants = current_grants(conn)
    except errors as exc:
        return Evidence((Check("database", "?", "cannot verify", f"cannot verify: {_reason(exc)}"),))
    whole_db = grants_cover(grants, database)
    checks: list[Check] = []
    versions: tuple[str, ...] | None = None

    def hidden(table: str, label: str) -> Check | None:
        if table in tables:
            return None
        if whole_db:
            return Check(
                label, "MISSING", "failed", f"table {table} does not exist in {database}", "SHOW TABLES"
            )
        return Check(
            label,
            "not visible",
            "cannot verify",
            f"cannot verify {label}: table {table} is not visible to the DB user and its grants do not "
            f"cover all of {database} (missing grant: {missing_grant(database, table)})",
            "SHOW TABLES, SHOW GRANTS",
        )

    missing = hidden("alembic_version", "alembic_version")
    if missing:
        checks.append(missing)
    else:
        try:
            versions = alembic_version_rows(conn)
            show(
                "SELECT version_num FROM alembic_version;",
                Rows(("version_num",), tuple((v,) for v in versions)),
            )
            checks.append(
                replace(judge_alembic(versions, expected_head), source="SELECT FROM alembic_version")
            )
        except errors as exc:
            checks.append(Check("alembic_version", "?", "cannot verify", f"cannot verify: {_reason(exc)}"))
    for item in expect:
        label = f"{item.table}.{item.column}"
        missing = hidden(item.table, label)
        if missing:
            checks.append(missing)
            continue
        try:
            definite = whole_db or grants_cover(grants, database, item.table)
            source = "SHOW COLUMNS, INFORMATION_SCHEMA.COLUMNS, SHOW INDEX"
            checks += [
                replace(c, source=source) for c in _schema_checks(conn, database, item, definite, show)
            ]
        except errors as exc:
            checks.append(Check(label, "?", "cannot verify", f"cannot verify {label}: {_reason(exc)}"))
    return Evidence(tuple(checks), versions)


def verify_migration(call: PhaseCall) -> PhaseOutcome:
    """Read alembic_version and each expected column and index; establish ``db_revision_after``."""
    session, sink = call.session, call.sink
    cfg = call.config
    db, mig = cfg.database, cfg.migration

    def show(title: str, rows: Rows) -> None:
        sink("info", [f"$ {title}"])
        sink("stdout", rows.render())

    sink("info", [f"database {db.name} at {db.host}:{db.port} as {db.user}, through {cfg.target.host}"])
    conn = session.open_db()
    try:
        evidence = collect(conn, db.name, mig.expected_head, mig.expected(), show)
    finally:
        conn.close()
    if evidence.versions is not None and len(evidence.versions) == 1:
        call.establish(db_revision_after=evidence.versions[0])
    return conclude(evidence.checks)
