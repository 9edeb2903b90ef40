"""The checklist's "Verification Commands Quick Reference" (and the monitoring rows' checks), runnable.

Each runnable checklist node maps to one or more :class:`QuickRef` built from the deploy config, never from
the seed's placeholders (``mysql -u user -p db``). All of them are read-only, so they run without a gate:

* ``flask db current``: the migration runner's standalone mode (the app is not imported, so it answers
  even while the app's import dies on ``Unknown column``), password on stdin;
* ``flask db history`` / ``branches``: no standalone mode exists, so the app's own ``flask db`` runs; when
  the app cannot be imported the migration files in the work tree are read instead (and it says so);
* the SQL ones through PyMySQL over the SSH connection, as valid SQL (``SHOW COLUMNS FROM `user` WHERE
  Field = 'api_token'``; the seed's ``DESCRIBE user WHERE ...`` is not valid MySQL).
"""

from __future__ import annotations

import shlex
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast

from todobox_deploy.config import DeployConfig
from todobox_deploy.core.streams import OutputSink
from todobox_deploy.db.schema import quote_ident
from todobox_deploy.engine.flask_cli import flask_command
from todobox_deploy.engine.migrate_runner import migration_script, migration_stdin
from todobox_deploy.engine.service import probe_command, service_command
from todobox_deploy.remote.errors import CommandCancelled, RemoteError

if TYPE_CHECKING:
    from todobox_deploy.engine.alembic_graph import RevisionGraph
    from todobox_deploy.engine.session import DeploySession

QuickKind = Literal["host", "migration", "flask", "sql", "monitor"]
TIMEOUT = 120.0
MAX_CELL = 80


@dataclass(frozen=True)
class SqlStatement:
    """One read-only statement and its parameters (PyMySQL quotes them)."""

    sql: str
    params: tuple[str, ...] = ()

    def shown(self) -> str:
        """The statement as the operator would type it (parameters as quoted literals)."""
        text = self.sql
        for value in self.params:
            literal = "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
            text = text.replace("%s", literal, 1)
        return text


@dataclass(frozen=True)
class QuickRef:
    """One runnable check: ``command`` is what the operator sees and the journal records (no secret)."""

    id: str
    title: str
    kind: QuickKind
    command: str
    how: str
    script: str | tuple[str, ...] | None = None
    sql: tuple[SqlStatement, ...] = ()
    flask_args: tuple[str, ...] = ()
    read_only: bool = True


def _migration_status(config: DeployConfig) -> QuickRef:
    return QuickRef(
        "reference.migration_status",
        "Check migration status",
        "migration",
        "flask db current",
        "the migration runner's standalone mode: the app is not imported; the password goes on stdin",
        script=migration_script(config, [("current", "")], mode="standalone"),
    )


def _flask_db(node_id: str, title: str, command: str, config: DeployConfig) -> QuickRef:
    return QuickRef(
        node_id,
        title,
        "flask",
        f"flask db {command}",
        "the app's own flask (no standalone mode exists); if the app cannot be imported, the migration "
        "files in the work tree are read instead",
        script=flask_command(config.app, ["db", command]),
        flask_args=("db", command),
    )


def _per_expected(config: DeployConfig, node_id: str, title: str, template: str) -> QuickRef:
    """One SQL statement per expected column: ``template`` with the table quoted, the column a parameter."""
    statements = tuple(
        SqlStatement(template.format(table=quote_ident(e.table)), (e.column,))
        for e in config.migration.expected()
    )
    shown = "; ".join(s.shown() for s in statements)
    return QuickRef(node_id, title, "sql", shown, "PyMySQL over the SSH connection", sql=statements)


def _columns(config: DeployConfig) -> QuickRef:
    return _per_expected(
        config, "reference.column", "Verify column exists", "SHOW COLUMNS FROM {table} WHERE Field = %s"
    )


def _indexes(config: DeployConfig) -> QuickRef:
    return _per_expected(
        config, "reference.index", "Verify index exists", "SHOW INDEX FROM {table} WHERE Column_name = %s"
    )


def _sql(node_id: str, title: str, sql: str) -> QuickRef:
    return QuickRef(node_id, title, "sql", sql, "PyMySQL over the SSH connection", sql=(SqlStatement(sql),))


def _service_status(config: DeployConfig) -> QuickRef | None:
    app = config.app
    if app.service_manager == "systemd":
        argv: list[str] | None = [app.systemctl, "status", "--no-pager", "--lines=20", "--", app.service_name]
    else:
        argv = service_command(app, "status")
    if not argv:
        return None
    return QuickRef(
        "monitoring.issues.wont_start",
        "Service status",
        "host",
        shlex.join(argv),
        f"the {app.service_manager} status on the host",
        script=tuple(argv),
    )


def _http_verify(config: DeployConfig) -> QuickRef | None:
    urls = [u for u in (config.app.health_url, config.app.check_url) if u]
    if not urls:
        return None
    script = "; ".join(
        f"printf '%s ' {shlex.quote(u)}; {shlex.join(probe_command(config.app, u))}" for u in urls
    )
    return QuickRef(
        "monitoring.rollback.verify",
        "Verify it works",
        "host",
        " ; ".join(f"GET {u}" for u in urls),
        "an HTTP GET from the host with the app's interpreter (status code, or 'down <why>')",
        script=script,
    )


def _monitor(node_id: str) -> QuickRef:
    return QuickRef(node_id, "Logs to watch", "monitor", "monitoring tails", "the monitoring screen")


def quickrefs(node_id: str, config: DeployConfig) -> tuple[QuickRef, ...]:
    """What ``x`` runs on a checklist node: () when the node has nothing runnable."""
    refs: tuple[QuickRef | None, ...]
    if node_id == "reference.migration_status":
        refs = (_migration_status(config),)
    elif node_id == "reference.history":
        refs = (_flask_db(node_id, "View all migrations", "history", config),)
    elif node_id == "reference.branches":
        refs = (_flask_db(node_id, "View migration branches", "branches", config),)
    elif node_id == "reference.column":
        refs = (_columns(config),)
    elif node_id == "reference.index":
        refs = (_indexes(config),)
    elif node_id == "reference.alembic_version":
        refs = (_sql(node_id, "Check the revision row", "SELECT * FROM alembic_version"),)
    elif node_id == "monitoring.issues.unknown_column":
        refs = (_migration_status(config), _columns(config))
    elif node_id == "monitoring.issues.wont_start":
        refs = (_service_status(config),)
    elif node_id == "monitoring.issues.slow_db":
        refs = (_sql(node_id, "What the server runs", "SHOW FULL PROCESSLIST"),)
    elif node_id == "monitoring.issues.connection_refused":
        check = "SELECT 1 AS answered, VERSION() AS version, CURRENT_USER() AS account, DATABASE() AS db"
        refs = (_sql(node_id, "Database connection check", check),)
    elif node_id == "monitoring.rollback.verify":
        refs = (_http_verify(config),)
    elif node_id in ("monitoring.logs", "support.check_logs"):
        refs = (_monitor(node_id),)
    else:
        refs = ()
    return tuple(r for r in refs if r is not None)


# -- running ---------------------------------------------------------------------------------------


def table_lines(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """Rows as aligned columns (cells cut at MAX_CELL characters); "(no rows)" when empty."""
    if not rows:
        return ["(no rows)"]
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    head = "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()
    rule = "  ".join("-" * w for w in widths)
    body = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return [head, rule, *body]


def _cell(value: object) -> str:
    if value is None:
        text = "NULL"
    elif isinstance(value, bytes | bytearray):
        text = bytes(value).decode("utf-8", "backslashreplace")
    else:
        text = str(value)
    text = text.replace("\n", "\\n")
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


class _Unrecorded:
    """The session as the revision reader needs it, its command kept off the running phase's record."""

    def __init__(self, session: DeploySession) -> None:
        self.config = session.config
        self._session = session

    def capture(self, argv: Sequence[str] | str, **kwargs: Any) -> Any:
        return self._session.capture(argv, record=False, **kwargs)


def branch_lines(graph: RevisionGraph) -> list[str]:
    """Branch points (a revision more than one builds on) and multiple heads, as ``flask db branches``."""
    children: dict[str, list[str]] = {}
    for rev in graph.revisions.values():
        for down in rev.down_revisions:
            children.setdefault(down, []).append(rev.revision)
    lines = [
        f"{down} (branchpoint) -> {', '.join(sorted(kids))}"
        for down, kids in sorted(children.items())
        if len(kids) > 1
    ]
    heads = graph.heads()
    if len(heads) > 1:
        lines.append(f"more than one head: {', '.join(heads)}")
    return lines or ["no branch points: the history is one line"]


def _from_files(session: DeploySession, ref: QuickRef, sink: OutputSink) -> int:
    from todobox_deploy.engine.revisions import graph_in_work_tree, history_lines

    reader = cast("DeploySession", _Unrecorded(session))
    graph, versions = graph_in_work_tree(reader, session.config.migration.migrations_dir)
    sink("info", [f"read from the migration files in {versions} (the app is not imported)"])
    lines = history_lines(graph) if ref.flask_args[-1] == "history" else branch_lines(graph)
    sink("stdout", lines)
    if graph.problems:
        sink("stderr", list(graph.problems))
    return 0


def _run_sql(session: DeploySession, ref: QuickRef, sink: OutputSink) -> int:
    conn = session.open_db()
    try:
        for statement in ref.sql:
            sink("info", [f"mysql> {statement.shown()}"])
            with conn.cursor() as cur:
                cur.execute(statement.sql, statement.params or None)
                columns = [d[0] for d in cur.description or ()]
                sink("stdout", table_lines(columns, cur.fetchall()))
    finally:
        conn.close()
    return 0


def run_quickref(
    session: DeploySession, ref: QuickRef, sink: OutputSink, cancel: threading.Event | None = None
) -> tuple[int | None, str]:
    """Run one check into ``sink`` (blocking: a worker thread). Returns (exit code, what ran): 0 when it
    ran, non-zero when it failed, None when it has no exit code (cancelled, link lost). Never raises."""
    from todobox_deploy.engine.flow import describe

    sink("info", [f"$ {ref.command}   ({ref.how})"])
    ran = ref.command
    try:
        if ref.kind == "sql":
            return _run_sql(session, ref, sink), ran
        if ref.kind == "monitor" or ref.script is None:
            sink("error", [f"{ref.id} opens the monitoring screen: nothing to run"])
            return 1, ran
        stdin = migration_stdin("standalone", session.db_password()) if ref.kind == "migration" else None
        script = ref.script if isinstance(ref.script, str) else list(ref.script)
        code = session.connection.run(
            script, sink, cancel=cancel, stdin=stdin, secrets=session.secrets, timeout=TIMEOUT
        )
        if ref.kind == "flask" and code != 0:
            sink("info", [f"the app's flask exited with status {code}: reading the migration files instead"])
            ran = f"{ref.command} (exit {code}), then the migration files read"
            return _from_files(session, ref, sink), ran
        return code, ran
    except CommandCancelled:
        sink("info", ["cancelled"])
        return None, ran
    except RemoteError as exc:
        sink("error", [str(exc)])
        return None, ran
    except Exception as exc:  # a check that fails says why, in the log, and never takes the UI down
        sink("error", [describe(exc)])
        return 1, ran
