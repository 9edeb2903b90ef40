"""The quick reference, runnable: each entry's command is built from the config (never the seed's
placeholders), is valid SQL, runs read-only; scripted fakes for the logic, the real sandbox for the SQL."""

from __future__ import annotations

import shlex
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from todobox_deploy.checklist import CHECKLIST
from todobox_deploy.config import (
    AppConfig,
    BackupConfig,
    DatabaseConfig,
    DeployConfig,
    ExpectedSchema,
    MigrationConfig,
    TargetConfig,
    load_config,
)
from todobox_deploy.core.streams import Stream
from todobox_deploy.engine.quickref import QuickRef, quickrefs, run_quickref, table_lines
from todobox_deploy.engine.session import DeploySession
from todobox_deploy.remote.connection import SshConnection
from todobox_deploy.remote.errors import CommandCancelled
from todobox_deploy.remote.secrets import Secrets
from todobox_deploy.sandbox.manager import SandboxInfo

CONFIG = DeployConfig(
    TargetConfig(host="prod"),
    AppConfig(path="/srv/accounts", venv="/srv/venv", env_file="/srv/accounts/.env", service_name="accounts"),
    DatabaseConfig(name="accounts_db", user="acct"),
    MigrationConfig(
        expected_head="d1f2e3c4b5a6",
        expect=(
            ExpectedSchema("member", "api_key", index="ix_member_api_key"),
            ExpectedSchema("org", "o'key"),
        ),
    ),
    BackupConfig(directory="/srv/backups"),
)
PASSWORD = "s3cret-pw"
READ_DIR_JSON = '{"migrations/versions/a1.py": "revision = \\"a1\\"\\ndown_revision = None\\n"}'


class FakeCursor:
    def __init__(self, db: FakeDb) -> None:
        self.db = db
        self.description: tuple[tuple[str], ...] | None = None
        self._rows: list[tuple[Any, ...]] = []

    def __enter__(self) -> FakeCursor:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def execute(self, sql: str, params: Sequence[str] | None = None) -> None:
        self.db.executed.append((sql, tuple(params or ())))
        if self.db.fail is not None:
            raise self.db.fail
        columns, rows = self.db.answer
        self.description = tuple((c,) for c in columns)
        self._rows = rows

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._rows

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._rows[0] if self._rows else None


@dataclass
class FakeDb:
    answer: tuple[list[str], list[tuple[Any, ...]]] = (["Field", "Type"], [("api_key", "varchar(64)")])
    fail: Exception | None = None
    executed: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    closed: int = 0

    def cursor(self) -> FakeCursor:
        return FakeCursor(self)

    def close(self) -> None:
        self.closed += 1


@dataclass
class FakeConnection:
    """Answers each command by the first key found in its text: (exit code, stdout lines)."""

    answers: dict[str, tuple[int, list[str]]] = field(default_factory=dict)
    runs: list[tuple[str, bytes | None]] = field(default_factory=list)
    cancel_raises: bool = False

    def run(
        self,
        argv: Sequence[str] | str,
        sink: Any,
        *,
        cancel: threading.Event | None = None,
        stdin: bytes | None = None,
        secrets: Secrets | None = None,
        timeout: float | None = None,
    ) -> int:
        text = argv if isinstance(argv, str) else shlex.join(argv)
        self.runs.append((text, stdin))
        if self.cancel_raises:
            raise CommandCancelled("cancelled")
        for key, (code, lines) in self.answers.items():
            if key in text:
                sink("stdout", lines)
                return code
        raise AssertionError(f"unscripted command: {text[:200]}")


@dataclass
class Captured:
    exit_status: int
    stdout: str = ""
    stderr: str = ""


@dataclass
class FakeSession:
    config: DeployConfig = CONFIG
    connection: FakeConnection = field(default_factory=FakeConnection)
    db: FakeDb = field(default_factory=FakeDb)
    secrets: Secrets = field(default_factory=Secrets)
    captured: list[tuple[str, bool]] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)

    def db_password(self) -> str:
        self.secrets.add(PASSWORD)
        return PASSWORD

    def open_db(self) -> FakeDb:
        return self.db

    def capture(self, argv: Sequence[str] | str, *, record: bool = True, **_: Any) -> Captured:
        text = argv if isinstance(argv, str) else shlex.join(argv)
        self.captured.append((text, record))
        return Captured(0, READ_DIR_JSON)


def _run(session: FakeSession, ref: QuickRef) -> tuple[int | None, str, list[tuple[Stream, str]]]:
    seen: list[tuple[Stream, str]] = []
    code, ran = run_quickref(session, ref, lambda s, lines: seen.extend((s, x) for x in lines))  # type: ignore[arg-type]
    return code, ran, seen


def _one(node_id: str) -> QuickRef:
    refs = quickrefs(node_id, CONFIG)
    assert len(refs) == 1, refs
    return refs[0]


def test_every_reference_entry_is_runnable_and_built_from_the_config() -> None:
    reference = CHECKLIST.find("reference")
    assert reference is not None
    for node in reference.children:
        refs = quickrefs(node.id, CONFIG)
        assert refs, node.id
        for ref in refs:
            assert ref.read_only and ref.kind != "monitor"
            for placeholder in ("mysql -u", "-p db", "username", "database_name", "todobox", "DESCRIBE"):
                assert placeholder not in ref.command, (node.id, placeholder)
            for placeholder in ("mysql -u", "-p db", "database_name", "DESCRIBE user"):
                assert placeholder not in str(ref.script or ""), (node.id, placeholder)
    assert _one("reference.column").command == (
        "SHOW COLUMNS FROM `member` WHERE Field = 'api_key'; SHOW COLUMNS FROM `org` WHERE Field = 'o\\'key'"
    )
    assert _one("reference.index").command.startswith(
        "SHOW INDEX FROM `member` WHERE Column_name = 'api_key'"
    )
    assert _one("reference.alembic_version").command == "SELECT * FROM alembic_version"
    status = _one("reference.migration_status")
    assert status.kind == "migration" and "standalone" in status.how and "/srv/accounts" in str(status.script)
    history = _one("reference.history")
    assert history.kind == "flask" and history.flask_args == ("db", "history")
    assert "cd -- /srv/accounts" in str(history.script) and "/srv/venv/bin/python" in str(history.script)


def test_issue_rows_and_monitoring_nodes_offer_their_checks() -> None:
    assert [r.id for r in quickrefs("monitoring.issues.unknown_column", CONFIG)] == [
        "reference.migration_status",
        "reference.column",
    ]
    status = _one("monitoring.issues.wont_start")
    assert status.script == ("systemctl", "status", "--no-pager", "--lines=20", "--", "accounts")
    assert _one("monitoring.issues.slow_db").command == "SHOW FULL PROCESSLIST"
    assert _one("monitoring.issues.connection_refused").kind == "sql"
    assert _one("monitoring.logs").kind == "monitor" and _one("support.check_logs").kind == "monitor"
    assert quickrefs("monitoring.rollback.verify", CONFIG) == ()  # no URL configured: nothing to GET
    with_url = DeployConfig(
        CONFIG.target,
        AppConfig(path="/srv/accounts", health_url="http://127.0.0.1:8000/health"),
        CONFIG.database,
        CONFIG.migration,
        CONFIG.backup,
    )
    verify = quickrefs("monitoring.rollback.verify", with_url)
    assert verify and verify[0].command == "GET http://127.0.0.1:8000/health"
    for node_id in ("deploy.migrate", "postdeploy.login", "monitoring.rollback.restore_db", "nope"):
        assert quickrefs(node_id, CONFIG) == ()  # nothing that changes the host runs without its gate


def test_sql_runs_with_parameters_and_prints_a_table() -> None:
    session = FakeSession()
    code, ran, seen = _run(session, _one("reference.column"))
    assert code == 0 and ran.startswith("SHOW COLUMNS")
    assert session.db.executed == [
        ("SHOW COLUMNS FROM `member` WHERE Field = %s", ("api_key",)),
        ("SHOW COLUMNS FROM `org` WHERE Field = %s", ("o'key",)),
    ]
    assert session.db.closed == 1
    assert ("info", "mysql> SHOW COLUMNS FROM `member` WHERE Field = 'api_key'") in seen
    assert ("stdout", "api_key  varchar(64)") in seen
    assert table_lines(["a"], []) == ["(no rows)"]
    assert table_lines(["x", "y"], [(None, b"\xff" + b"z" * 100)])[2].startswith("NULL  \\xffzzz")


def test_a_failing_query_says_why_and_never_raises() -> None:
    import pymysql

    session = FakeSession(
        db=FakeDb(fail=pymysql.err.OperationalError(1146, "Table 'x.alembic_version' doesn't exist"))
    )
    code, _, seen = _run(session, _one("reference.alembic_version"))
    assert code == 1
    assert ("error", "MySQL error 1146: Table 'x.alembic_version' doesn't exist") in seen
    assert session.db.closed == 1


def test_flask_db_current_runs_standalone_with_the_password_on_stdin() -> None:
    session = FakeSession(connection=FakeConnection({"todobox_migrate": (0, ["c682ef478e45"])}))
    code, ran, seen = _run(session, _one("reference.migration_status"))
    assert code == 0 and ran == "flask db current"
    script, stdin = session.connection.runs[0]
    assert stdin == (PASSWORD + "\n").encode()
    assert PASSWORD not in script  # never on a command line
    assert ("stdout", "c682ef478e45") in seen


def test_flask_db_history_falls_back_to_the_migration_files_when_the_app_does_not_import() -> None:
    failing = FakeConnection({"flask": (1, ['sqlalchemy.exc.OperationalError: (1054, "Unknown column")'])})
    session = FakeSession(connection=failing)
    code, ran, seen = _run(session, _one("reference.history"))
    assert code == 0
    assert ran == "flask db history (exit 1), then the migration files read"
    assert ("stdout", "<base> -> a1 (head), migrations/versions/a1.py") in seen
    assert session.captured and all(not record for _, record in session.captured)  # off the phase's record
    working = FakeSession(connection=FakeConnection({"flask": (0, ["<base> -> a1 (head), initial"])}))
    code, ran, _ = _run(working, _one("reference.branches"))
    assert (code, ran, working.captured) == (0, "flask db branches", [])


def test_a_cancelled_check_has_no_exit_code() -> None:
    session = FakeSession(connection=FakeConnection(cancel_raises=True))
    code, _, seen = _run(session, _one("monitoring.issues.wont_start"))
    assert code is None and ("info", "cancelled") in seen


@pytest.mark.integration
@pytest.mark.timeout(180)
def test_every_reference_entry_runs_on_the_sandbox(sandbox_reset: SandboxInfo, tmp_path: Path) -> None:
    """On the real host in its bug state: the SQL is valid MySQL and each check answers."""
    config = load_config(sandbox_reset.config)
    session = DeploySession(
        config, connection=SshConnection(config.target, pinned_known_hosts=tmp_path / "pins"), environ={}
    )
    outputs: dict[str, tuple[int | None, str]] = {}
    try:
        reference = CHECKLIST.find("reference")
        assert reference is not None
        for node in reference.children:
            for ref in quickrefs(node.id, config):
                seen: list[str] = []
                code, ran = run_quickref(session, ref, lambda _s, lines, seen=seen: seen.extend(lines))
                outputs[node.id] = (code, "\n".join(seen))
                assert code == 0, (node.id, ran, seen)
        assert session.commands == []  # none of them lands on a phase's record
    finally:
        session.close()
    assert "c682ef478e45" in outputs["reference.migration_status"][1]  # the bug state's revision
    assert "c682ef478e45" in outputs["reference.alembic_version"][1]
    assert "(no rows)" in outputs["reference.column"][1]  # api_token is missing
    assert "(no rows)" in outputs["reference.index"][1]
    assert "-> c682ef478e45" in outputs["reference.history"][1]
