"""The sandbox MariaDB's general query log, switched on for one test: which statements reached the server.

Proof that something ran exactly once is a count of the statements the server received, not what the tool
says it did. The log goes to ``mysql.general_log`` (a table, so it is read with SQL) and is switched off and
emptied again at the end; the server is the session sandbox's, which no other test uses meanwhile.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Any

from todobox_deploy.sandbox.mariadb import ThrowawayMariaDB


class StatementLog:
    """``with StatementLog(sandbox_dir) as log: ...; log.queries("ALTER TABLE%api_token%")``."""

    def __init__(self, sandbox_dir: Path) -> None:
        self.db = ThrowawayMariaDB(sandbox_dir / "db")

    def _sql(self, *statements: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        conn = self.db.admin_connect()
        try:
            with conn.cursor() as cur:
                for statement in statements:
                    cur.execute(statement, args or None)
                return list(cur.fetchall())
        finally:
            conn.close()

    def __enter__(self) -> StatementLog:
        (self._was,) = self._sql("SELECT @@GLOBAL.general_log, @@GLOBAL.log_output")
        self._sql(
            "SET GLOBAL general_log = OFF",
            "TRUNCATE TABLE mysql.general_log",
            "SET GLOBAL log_output = 'TABLE'",
            "SET GLOBAL general_log = ON",
        )
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        general_log, log_output = self._was
        self._sql("SET GLOBAL general_log = OFF", "TRUNCATE TABLE mysql.general_log")
        self._sql("SET GLOBAL log_output = %s", args=(log_output,))
        self._sql(f"SET GLOBAL general_log = {1 if general_log else 0}")

    def queries(self, like: str) -> list[str]:
        """The statements the server received whose text matches the SQL ``LIKE`` pattern (any case)."""
        rows = self._sql(
            "SELECT CONVERT(argument USING utf8mb4) FROM mysql.general_log "
            "WHERE command_type = 'Query' AND thread_id <> CONNECTION_ID() "
            "AND UPPER(CONVERT(argument USING utf8mb4)) LIKE UPPER(%s) ORDER BY event_time",
            args=(like,),
        )
        return [str(r[0]) for r in rows]
