"""What an account's ``SHOW GRANTS`` lets it see: whether "absent" from INFORMATION_SCHEMA means absent.

MySQL hides tables (and columns) the account holds no privilege on, so a missing table or column is only
evidence when the grants cover it; otherwise the answer is "cannot verify" and the missing grant is named.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_IDENT = r"(?:\*|`(?:[^`]|``)*`)"
_GRANT = re.compile(rf"^GRANT (?P<privs>.*?) ON (?:TABLE )?(?P<db>{_IDENT})\.(?P<tbl>{_IDENT}) TO ", re.S)


def _unquote(ident: str) -> str:
    return ident[1:-1].replace("``", "`") if ident.startswith("`") else ident


def _like(pattern: str, value: str) -> bool:
    """MySQL's LIKE, as a grant's database name uses it (``%``, ``_``, backslash escapes)."""
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    return re.fullmatch("".join(out), value, re.S) is not None


def _table_level(privs: str) -> bool:
    """True when the privilege list holds a table-level privilege (not USAGE, not only column grants)."""
    depth, part, parts = 0, "", []
    for ch in privs:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            parts.append(part)
            part = ""
        else:
            part += ch
    parts.append(part)
    return any(p.strip() and "(" not in p and p.strip().upper() != "USAGE" for p in parts)


def grants_cover(grants: Sequence[str], database: str, table: str | None = None) -> bool:
    """Whether SHOW GRANTS gives a table-level privilege on ``database`` as a whole (``table`` None) or on
    ``database.table``: then every table (or the table's every column) is visible to this account."""
    for grant in grants:
        m = _GRANT.match(grant.strip())
        if not m or not _table_level(m["privs"]):
            continue
        db, tbl = m["db"], m["tbl"]
        if db == "*" or (_like(_unquote(db), database) and tbl == "*"):
            return True
        if table is not None and _unquote(db) == database and _unquote(tbl) == table:
            return True
    return False


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def missing_grant(database: str, table: str) -> str:
    """The grant that would make ``database.table`` fully visible, as a DBA would type it."""
    return f"SELECT ON {_q(database)}.{_q(table)} (or on {_q(database)}.*)"


def visibility_gap(
    grants: Sequence[str], database: str, table: str, visible: bool, user: str = "the DB user"
) -> str | None:
    """Why the absence of ``table`` (or of a column or index in it) proves nothing, or None when it would.

    ``visible``: the table shows in INFORMATION_SCHEMA / SHOW TABLES for this account."""
    if grants_cover(grants, database) or grants_cover(grants, database, table):
        return None
    seen = "is visible only through column grants" if visible else "is not visible"
    return (
        f"table {table} {seen} to {user} and its grants do not cover it "
        f"(missing grant: {missing_grant(database, table)})"
    )
