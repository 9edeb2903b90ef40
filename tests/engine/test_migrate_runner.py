"""The migration runner's command text, its host programs (run locally, no servers), the import probe's
classification and the migrate phase's decisions against a scripted fake session."""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import json
import os
import shlex
import shutil
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from todobox_deploy.config import (
    AppConfig,
    BackupConfig,
    DatabaseConfig,
    DeployConfig,
    MigrationConfig,
    TargetConfig,
)
from todobox_deploy.core.context import BackupRecord, DeployContext
from todobox_deploy.core.outcome import PhaseStatus
from todobox_deploy.core.streams import OutputSink, Stream
from todobox_deploy.engine import migrate_runner as runner
from todobox_deploy.engine.flask_cli import flask_command
from todobox_deploy.engine.migrate_runner import (
    APP_MODE_LINE,
    IMPORT_FAILED,
    STANDALONE_LINE,
    cap_lock_wait,
    checked_steps,
    classify_probe,
    last_error_line,
    migration_script,
    migration_stdin,
    probe_app_import,
)
from todobox_deploy.engine.phases.migrate import (
    conclude,
    lock_report,
    lock_waits,
    migrate,
    migration_run_id,
    planned_steps,
)
from todobox_deploy.engine.phases.spec import PhaseCall
from todobox_deploy.remote.errors import CommandTimedOut

HEAD, BUG = "d1f2e3c4b5a6", "c682ef478e45"
PASSWORD = "pw-Z9:@%/x"
CONFIG = DeployConfig(
    TargetConfig(host="prod"),
    AppConfig(
        path="/srv/todobox",
        python="/srv/venv/bin/python",
        env_file="/srv/todobox/.env",
        flask_app="wsgi.py",
    ),
    DatabaseConfig(name="todobox", user="todobox", host="db.internal", port=3307),
    MigrationConfig(expected_head=HEAD, index="ix_user_api_token", lock_wait_timeout=7),
    BackupConfig(directory="/srv/backups"),
)
APP_SOURCE = Path(__file__).resolve().parents[2] / "todobox_deploy" / "sandbox" / "todobox_app" / "base"


def _argv(script: str) -> list[str]:
    return shlex.split(script)


def _standalone_spec(script: str) -> dict[str, Any]:
    """The standalone runner's settings: the JSON word that names the database (last in its argv)."""
    for word in reversed(_argv(script.replace(";", " ; "))):
        with contextlib.suppress(ValueError):
            spec = json.loads(word)
            if isinstance(spec, dict) and "database" in spec:
                return spec
    raise AssertionError("no standalone runner in the script")


# -- the command text ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["app", "standalone"])
def test_the_password_is_never_in_the_command_only_on_stdin(mode: runner.RunnerMode) -> None:
    script = migration_script(CONFIG, [("stamp", "366e5694a9ad"), ("upgrade", HEAD)], mode=mode)
    assert PASSWORD not in script and "DATABASE_URL" not in script
    stdin = migration_stdin(mode, PASSWORD)
    assert stdin == (None if mode == "app" else PASSWORD.encode() + b"\n")


def test_a_password_with_a_line_break_is_refused_for_standalone() -> None:
    with pytest.raises(ValueError, match="line break"):
        migration_stdin("standalone", "a\nb")


def _commands(script: str) -> list[list[str]]:
    """The script's commands, split on the shell's ``&&`` tokens."""
    commands: list[list[str]] = [[]]
    for token in _argv(script):
        if token == "&&":
            commands.append([])
        else:
            commands[-1].append(token)
    return commands


def _after_dashes(argv: list[str]) -> list[str]:
    return argv[len(argv) - argv[::-1].index("--") :]


def test_app_mode_runs_the_apps_own_flask_db_like_flask_command() -> None:
    script = migration_script(CONFIG, [("stamp", "366e5694a9ad"), ("upgrade", HEAD)], mode="app")
    cd, stamp, upgrade = _commands(script)
    assert cd == ["cd", "--", "/srv/todobox"]
    reference = _commands(flask_command(CONFIG.app, ["db", "upgrade", HEAD]))[1]
    # same interpreter, env file and FLASK_APP as flask_cli's bootstrap; the same flask arguments
    assert upgrade[:3] == ["env", "PYTHONUNBUFFERED=1", "/srv/venv/bin/python"] == reference[1:4]
    assert upgrade[5:7] == ["/srv/todobox/.env", "wsgi.py"] == reference[6:8]
    assert _after_dashes(upgrade) == _after_dashes(reference) == ["db", "upgrade", HEAD]
    assert _after_dashes(stamp) == ["db", "stamp", "366e5694a9ad"]
    program = upgrade[4]
    assert "from flask.cli import main" in program and "def parse_env_file" in program
    assert "install_lock_wait_guard(7)" in program  # [migration] lock_wait_timeout for the guard


def test_standalone_never_imports_the_apps_package() -> None:
    script = migration_script(CONFIG, [("upgrade", HEAD)], mode="standalone")
    program = _argv(script)[-2]
    for forbidden in ("import app", "from app", "import config", "from config", "import wsgi", "FLASK_APP"):
        assert forbidden not in program
    assert "sys.path[:] = [p for p in sys.path if p not in ('', '.', os.getcwd())]" in program
    spec = _standalone_spec(script)
    assert spec == {
        "host": "db.internal",
        "port": 3307,
        "user": "todobox",
        "database": "todobox",
        "directory": "/srv/todobox/migrations",
        "lock_wait_timeout": 7,
        "steps": [["upgrade", HEAD]],
    }
    assert _argv(script)[:5] == ["cd", "--", "/srv/todobox", "&&", "exec"]


def test_overrides_for_the_rehearsal() -> None:
    script = migration_script(
        CONFIG,
        [("upgrade", HEAD)],
        mode="standalone",
        database_name="todobox_rehearsal_1",
        migrations_dir="/tmp/extracted/migrations",
    )
    spec = _standalone_spec(script)
    assert spec["database"] == "todobox_rehearsal_1"
    assert spec["directory"] == "/tmp/extracted/migrations"
    app = migration_script(CONFIG, [("upgrade", HEAD)], mode="app", migrations_dir="other/migrations")
    assert _argv(app)[-4:] == ["upgrade", "--directory", "/srv/todobox/other/migrations", HEAD]
    with pytest.raises(ValueError, match="standalone"):
        migration_script(CONFIG, [("upgrade", HEAD)], mode="app", database_name="scratch")


@pytest.mark.parametrize(
    "steps, message",
    [
        ([], "no migration steps"),
        ([("downgrade", "")], "explicit revision"),
        ([("stamp", "")], "explicit revision"),
        ([("downgrade", "-1")], "plain revision"),
        ([("upgrade", "head; rm -rf /")], "plain revision"),
        ([("upgrade", "a\nb")], "plain revision"),
        ([("merge", HEAD)], "unknown migration step"),
        ([("current", HEAD)], "no revision"),
    ],
)
def test_unsafe_steps_are_refused(steps: list[tuple[str, str]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        checked_steps(steps)


def test_cap_lock_wait() -> None:
    assert cap_lock_wait("SET SESSION lock_wait_timeout = 60", 3) == ("SET SESSION lock_wait_timeout = 3", 60)
    assert cap_lock_wait("set @@session.lock_wait_timeout=90", 5) == ("set @@session.lock_wait_timeout=5", 90)
    assert cap_lock_wait("SET lock_wait_timeout = 2", 3) == ("SET lock_wait_timeout = 2", None)
    assert cap_lock_wait("SET GLOBAL lock_wait_timeout = 60", 3)[1] is None
    assert cap_lock_wait("SET SESSION innodb_lock_wait_timeout = 50", 3)[1] is None
    assert cap_lock_wait("SELECT 'lock_wait_timeout = 60'", 3)[1] is None


# -- the host programs, run locally (no database needed) ------------------------------------------------


def _local_python(
    program: str, *args: str, stdin: bytes = b"", cwd: Path
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASK_", "DATABASE_"))}
    return subprocess.run(
        [sys.executable, "-u", "-c", program, *args],
        input=stdin.decode(),
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=60,
    )


def test_the_guard_sets_and_caps_lock_wait_timeout_on_every_engine(tmp_path: Path) -> None:
    guard = "import re, sys\n" + inspect.getsource(cap_lock_wait) + runner._GUARD
    check = """
install_lock_wait_guard(3)
from sqlalchemy import create_engine, event, text
engine = create_engine("sqlite://")
seen = []
event.listen(engine, "before_cursor_execute", lambda c, cur, s, *a: seen.append(s))
with engine.connect() as conn:
    try:
        conn.execute(text("SET SESSION lock_wait_timeout = 60"))
    except Exception:
        pass
print("SEEN", seen)
"""
    done = _local_python(guard + check, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "SEEN ['SET SESSION lock_wait_timeout = 3']" in done.stdout
    assert "sets lock_wait_timeout = 60; [migration] lock_wait_timeout caps it at 3 s" in done.stderr


def _app_lookalike(root: Path) -> Path:
    """A copy of the sandbox app whose every module records that it was imported."""
    app = root / "app_dir"
    shutil.copytree(APP_SOURCE, app)
    marker = root / "imported"
    for module in (app / "app" / "__init__.py", app / "config.py", app / "wsgi.py"):
        module.write_text(f"open({str(marker)!r}, 'a').write({module.name!r})\n" + module.read_text())
    return app


def test_standalone_fails_clearly_without_leaking_the_password_or_importing_the_app(tmp_path: Path) -> None:
    app = _app_lookalike(tmp_path)
    config = dataclasses.replace(
        CONFIG,
        app=dataclasses.replace(CONFIG.app, path=str(app), python=sys.executable),
        database=dataclasses.replace(CONFIG.database, host="127.0.0.1", port=1),
    )
    script = migration_script(config, [("upgrade", HEAD)], mode="standalone")
    argv = _argv(script)
    done = _local_python(argv[-2], argv[-1], stdin=migration_stdin("standalone", PASSWORD) or b"", cwd=app)
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "todobox-migrate: FAILED: OperationalError:" in out and "2003" in out
    assert "driver mysql+pymysql" in out and "the app is not imported" in out
    assert PASSWORD not in out and "pw-Z9" not in out
    assert not (tmp_path / "imported").exists()
    assert last_error_line(out.splitlines()) is not None
    assert "2003" in (last_error_line(out.splitlines()) or "")


def test_standalone_without_a_password_line_fails(tmp_path: Path) -> None:
    argv = _argv(migration_script(CONFIG, [("upgrade", HEAD)], mode="standalone"))
    done = _local_python(argv[-2], argv[-1], stdin=b"", cwd=tmp_path)
    assert done.returncode == 1
    assert "todobox-migrate: FAILED: RuntimeError: no password line on stdin" in done.stderr


# -- reading output -----------------------------------------------------------------------------------

IMPORT_1054 = """\
Traceback (most recent call last):
  File "/srv/venv/lib/python3.11/site-packages/pymysql/connections.py", line 780, in _read_packet
pymysql.err.OperationalError: (1054, "Unknown column 'user.api_token' in 'field list'")

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "/srv/todobox/wsgi.py", line 3, in <module>
    app = create_app()
sqlalchemy.exc.OperationalError: (pymysql.err.OperationalError) (1054, "Unknown column 'user.api_token' in \
'field list'")
[SQL: SELECT user.id, user.api_token FROM user LIMIT %(param_1)s]
(Background on this error at: https://sqlalche.me/e/20/e3q8)
"""


def test_last_error_line_prefers_the_runners_failure_then_the_exception() -> None:
    lines = IMPORT_1054.splitlines()
    assert (last_error_line(lines) or "").startswith("sqlalchemy.exc.OperationalError: (pymysql")
    ours = [*lines, "todobox-migrate: FAILED: OperationalError: (1205, 'Lock wait timeout exceeded')", "  x"]
    assert last_error_line(ours) == "OperationalError: (1205, 'Lock wait timeout exceeded')"
    flask_migrate_error = ["INFO  [alembic] x", "ERROR [flask_migrate] Error: Can't locate revision 'zz'"]
    assert last_error_line(flask_migrate_error) == "ERROR [flask_migrate] Error: Can't locate revision 'zz'"
    assert last_error_line(["INFO  [alembic.runtime.migration] Running upgrade a -> b"]) is None


@pytest.mark.parametrize(
    "code, stdout, stderr, ok, words",
    [
        (0, "c682ef478e45\n", "INFO  [alembic.runtime.migration] Context impl MySQLImpl.\n", True, BUG),
        (0, "", "", True, "no alembic_version row"),
        (1, "", IMPORT_1054, False, "cannot be imported"),
        (2, "", "Usage: flask [OPTIONS]\nError: No such command 'db'.\n", False, "no 'db' command"),
        (1, "", "Error: While importing 'wsgi', an ImportError was raised:\n", False, "cannot be imported"),
        (3, "", "", False, "exited with status 3 and printed nothing"),
        (1, "", "Traceback...\nKeyError: 'DATABASE_URL'\n", False, "KeyError: 'DATABASE_URL'"),
    ],
)
def test_probe_classification(code: int, stdout: str, stderr: str, ok: bool, words: str) -> None:
    answer = classify_probe(code, stdout, stderr, "flask db current (in /srv/todobox)")
    assert answer[0] is ok and words in answer[1]
    if code == 3:
        assert "flask db current (in /srv/todobox)" in answer[1]
    if "1054" in stderr:
        assert "Unknown column 'user.api_token'" in answer[1]


@dataclass
class Result:
    exit_status: int
    stdout: str = ""
    stderr: str = ""


@dataclass
class ProbeSession:
    answer: Result | Exception
    config: DeployConfig = CONFIG
    ran: list[tuple[str, str | None, float | None]] = field(default_factory=list)

    def capture(
        self, argv: str, *, display: str | None = None, timeout: float | None = None, **_: Any
    ) -> Result:
        self.ran.append((argv, display, timeout))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def test_probe_runs_flask_db_current_in_app_mode_with_a_timeout() -> None:
    session = ProbeSession(Result(0, BUG + "\n"))
    assert probe_app_import(session) == (True, BUG)  # type: ignore[arg-type]
    script, display, timeout = session.ran[0]
    assert _argv(script)[-2:] == ["db", "current"] and timeout == 60
    assert display == "flask db current (in /srv/todobox)"
    slow = ProbeSession(CommandTimedOut("the command ran longer than 60 s"))
    ok, why = probe_app_import(slow)  # type: ignore[arg-type]
    assert not ok and "did not finish within 60 s" in why


# -- the phase's decisions ----------------------------------------------------------------------------


def test_run_id_is_deterministic_per_deploy_and_sanitised() -> None:
    ctx = DeployContext(commit_target="b" * 40, db_revision_before=BUG)
    assert migration_run_id(ctx) == f"migrate-{'b' * 12}-{BUG}"
    assert migration_run_id(ctx) == migration_run_id(dataclasses.replace(ctx))
    odd = DeployContext(commit_after="c" * 40, db_revision_before="x y/../z")
    assert migration_run_id(odd) == f"migrate-{'c' * 12}-x_y_.._z"
    assert migration_run_id(DeployContext()) == "migrate-nocommit-none"
    backed = dataclasses.replace(ctx, backup=BackupRecord("/b.sql.gz", 10, "f00d" * 16, True))
    assert migration_run_id(backed) == f"migrate-{'b' * 12}-{BUG}-f00df00d"


def test_the_plan_comes_from_the_preflight_else_a_plain_upgrade() -> None:
    assert planned_steps(DeployContext(), HEAD) == (("upgrade", HEAD),)
    plan = (("stamp", "366e5694a9ad"), ("upgrade", HEAD))
    assert planned_steps(DeployContext(migration_plan=plan), HEAD) == plan


def _proc(i: int, user: str, command: str, state: str, info: str | None, time_s: int = 5) -> dict[str, str]:
    return {
        "ID": str(i),
        "USER": user,
        "HOST": f"127.0.0.1:{4000 + i}",
        "DB": "todobox",
        "COMMAND": command,
        "TIME": str(time_s),
        "STATE": state,
        "INFO": info or "NULL",
    }


PROCS = [
    _proc(10, "todobox", "Query", "Waiting for table metadata lock", "ALTER TABLE user ADD COLUMN api_token"),
    _proc(11, "todobox", "Sleep", "", None, 30),
    _proc(12, "todobox", "Query", "Waiting for table metadata lock", "SELECT * FROM `todobox`.`user`"),
    _proc(13, "todobox", "Query", "Sending data", "SELECT * FROM users_archive"),
    _proc(1, "system user", "Daemon", "InnoDB purge worker", None),
]


def test_lock_waits_without_process_names_possible_holders() -> None:
    waiting, holders = lock_waits(PROCS, None, {"user"})
    assert [w["ID"] for w in waiting] == ["10", "12"]
    assert [(h["ID"], confirmed) for h, confirmed in holders] == [("11", False)]
    lines = lock_report(waiting, holders, None, 3)
    assert lines[0].startswith("WARNING: metadata lock: session 10 (todobox@127.0.0.1:4010) has waited 5 s")
    assert "possibly held by session 11 (todobox@127.0.0.1:4011): Sleep for 30 s" in lines[2]
    assert "lock_wait_timeout = 3 s" in lines[-1]


def test_lock_waits_with_process_uses_open_transactions() -> None:
    trx = [{"ID": "13", "trx_started": "2025-07-14 10:00:00", "trx_state": "RUNNING"}]
    waiting, holders = lock_waits(PROCS, trx, {"user"})
    assert [(h["ID"], confirmed) for h, confirmed in holders] == [("13", True)]
    assert "transaction open since 2025-07-14 10:00:00" in lock_report(waiting, holders, trx, 3)[2]
    assert lock_waits(PROCS[1:2], trx, {"user"}) == ([], [])  # nothing waits: nothing to report


def test_conclude() -> None:
    assert conclude(HEAD, 0, (HEAD,), None)[0] is PhaseStatus.OK
    status, summary = conclude(HEAD, 0, (BUG,), None)
    assert status is PhaseStatus.FAILED and "not the expected head" in summary
    status, summary = conclude(
        HEAD, 1, (BUG,), "OperationalError: (1205, 'Lock wait timeout exceeded')", {"11": "a@b"}
    )
    assert status is PhaseStatus.FAILED
    assert "1205" in summary and "lock was held by session 11 (a@b)" in summary
    guessed = conclude(
        HEAD, 1, (BUG,), "OperationalError: (1205, 'Lock wait')", {"11": "a@b"}, confirmed=False
    )
    assert "lock was possibly held by session 11 (a@b)" in guessed[1]
    assert "MySQL DDL is not transactional" in summary and f"the DB is at {BUG}" in summary
    status, summary = conclude(HEAD, 0, "cannot verify: alembic_version could not be read (x)", None)
    assert status is PhaseStatus.FAILED and "cannot verify" in summary


# -- the phase against a scripted host ----------------------------------------------------------------


class FakeCursor:
    def __init__(self, db: FakeDb) -> None:
        self.db = db
        self.description: list[tuple[str]] | None = None
        self.rows: list[tuple[str]] = []

    def __enter__(self) -> FakeCursor:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def execute(self, sql: str, args: Any = None) -> int:
        self.db.queries.append(sql)
        if "INNODB_TRX" in sql:
            raise self.db.no_process
        if "information_schema.TABLES" in sql:
            self.description, self.rows = [("TABLE_NAME",)], [("alembic_version",)]
        elif "version_num" in sql:
            self.description, self.rows = [("version_num",)], [(v,) for v in self.db.versions]
        elif "PROCESSLIST" in sql:
            self.description, self.rows = [(k,) for k in PROCS[0]], []
        return len(self.rows)

    def fetchall(self) -> Sequence[Any]:
        return self.rows


@dataclass
class FakeDb:
    versions: list[str]
    queries: list[str] = field(default_factory=list)
    no_process: Exception = field(default_factory=lambda: Exception(1227, "Access denied; you need PROCESS"))

    def cursor(self) -> FakeCursor:
        return FakeCursor(self)

    def autocommit(self, on: bool) -> None:
        pass

    def close(self) -> None:
        pass


@dataclass
class FakeConnection:
    state: tuple[str, int | None, int | None]
    log: list[str]
    attached: list[int] = field(default_factory=list)

    def run_state(self, run_id: str) -> tuple[str, int | None, int | None]:
        return self.state

    def attach(self, run_id: str, sink: OutputSink, *, offset: int = 0, **_: Any) -> int:
        self.attached.append(offset)
        sink("stdout", self.log)
        return self.state[1] if self.state[1] is not None else 0


@dataclass
class FakeSession:
    connection: FakeConnection
    db: FakeDb
    config: DeployConfig = dataclasses.replace(
        CONFIG, migration=dataclasses.replace(CONFIG.migration, mode="app")
    )
    launched: list[tuple[str, str, bytes | None]] = field(default_factory=list)
    secrets: Any = None

    def db_password(self) -> str:
        return PASSWORD

    def open_db(self, **_: Any) -> FakeDb:
        return self.db

    def run_detached(
        self, run_id: str, script: str, sink: OutputSink, *, stdin: bytes | None = None, **_: Any
    ) -> int:
        self.launched.append((run_id, script, stdin))
        sink("stdout", ["INFO  [alembic.runtime.migration] Running upgrade c682ef478e45 -> d1f2e3c4b5a6"])
        self.db.versions = [HEAD]
        return 0


def _call(session: FakeSession, ctx: DeployContext) -> tuple[PhaseCall, list[tuple[Stream, str]]]:
    seen: list[tuple[Stream, str]] = []
    call = PhaseCall(session, lambda s, ls: seen.extend((s, x) for x in ls), threading.Event(), ctx)  # type: ignore[arg-type]
    return call, seen


CTX = DeployContext(commit_target="b" * 40, db_revision_before=BUG)


def test_an_absent_run_is_launched_once_and_recorded_first() -> None:
    session = FakeSession(FakeConnection(("absent", None, None), []), FakeDb([BUG]))
    call, seen = _call(session, CTX)
    outcome = migrate(call)
    assert outcome.status is PhaseStatus.OK, outcome.summary
    assert [r for r, _, _ in session.launched] == [f"migrate-{'b' * 12}-{BUG}"]
    assert session.launched[0][2] is None  # app mode: no stdin
    assert call.context.migration_run == f"migrate-{'b' * 12}-{BUG}" and call.context.migrate_mode == "app"
    assert call.context.db_revision_after == HEAD
    assert outcome.fact("mode") == "app (set by [migration] mode)"
    assert outcome.fact("revision") == f"{BUG} -> {HEAD}" and outcome.fact("exit code") == "0"
    assert outcome.fact("steps") == f"upgrade {HEAD}"


def test_a_finished_run_is_reported_never_relaunched() -> None:
    log = ["todobox-migrate: FAILED: OperationalError: (1205, 'Lock wait timeout exceeded')"]
    session = FakeSession(FakeConnection(("finished", 1, 120), log), FakeDb([BUG]))
    ctx = dataclasses.replace(CTX, migration_run="migrate-earlier", migrate_mode="standalone")
    call, seen = _call(session, ctx)
    outcome = migrate(call)
    assert session.launched == [] and session.connection.attached == [0]
    assert outcome.status is PhaseStatus.FAILED
    assert "had already finished (not run again)" in outcome.summary and "1205" in outcome.summary
    assert outcome.fact("run id") == "migrate-earlier" and outcome.fact("exit code") == "1"
    assert outcome.fact("mode") == "standalone (recorded when the run was launched)"


def test_a_run_without_exit_code_cannot_be_verified() -> None:
    session = FakeSession(FakeConnection(("unknown", None, None), []), FakeDb([BUG]))
    call, _ = _call(session, CTX)
    outcome = migrate(call)
    assert outcome.status is PhaseStatus.FAILED and session.launched == []
    assert (
        outcome.summary.startswith("cannot verify: the migration run") and "inspect the DB" in outcome.summary
    )
    assert call.context.migration_run == f"migrate-{'b' * 12}-{BUG}"


def test_auto_mode_is_decided_on_the_host_in_the_same_run() -> None:
    """No probe before the launch (the app is down: nothing waits on a separate import); the run itself
    tries the app's own Flask-Migrate and falls back to the standalone runner when the import dies, and
    the mode it used is read back from its output."""

    class FellBack(FakeSession):
        def capture(self, argv: str, **_: Any) -> Result:
            raise AssertionError("auto mode must not probe the app before the run")

        def run_detached(self, run_id: str, script: str, sink: OutputSink, **kw: Any) -> int:
            sink("stderr", [f"todobox-migrate: the app does not import (wsgi.py): {IMPORT_1054}"])
            fallback = (
                "todobox-migrate: the app's own Flask-Migrate cannot run: running its migration scripts"
            )
            sink(
                "stdout",
                [fallback, f"{STANDALONE_LINE} migrations in m, database d; the app is not imported"],
            )
            return super().run_detached(run_id, script, sink, **kw)

    config = dataclasses.replace(CONFIG, migration=dataclasses.replace(CONFIG.migration, mode="auto"))
    session = FellBack(FakeConnection(("absent", None, None), []), FakeDb([BUG]), config=config)
    plan = (("stamp", "366e5694a9ad"), ("upgrade", HEAD))
    call, seen = _call(session, dataclasses.replace(CTX, migration_plan=plan))
    outcome = migrate(call)
    assert outcome.status is PhaseStatus.OK, outcome.summary
    assert call.context.migrate_mode == "standalone"
    assert (outcome.fact("mode") or "").startswith("standalone (auto: the app does not import (wsgi.py): ")
    assert "Unknown column" in (outcome.fact("mode") or "")
    assert (
        outcome.summary
        == f"migrated: alembic_version is {HEAD} (standalone mode, stamp 366e5694a9ad, upgrade {HEAD})"
    )
    _, script, stdin = session.launched[0]
    assert stdin == PASSWORD.encode() + b"\n" and PASSWORD not in script  # for the fallback, on stdin only
    assert _standalone_spec(script)["steps"] == [["stamp", "366e5694a9ad"], ["upgrade", HEAD]]
    assert f"if [ $rc -eq {IMPORT_FAILED} ]" in script  # only a failed import falls back, never a failed step


def test_auto_mode_that_imported_the_app_says_app_mode() -> None:
    class Imported(FakeSession):
        def run_detached(self, run_id: str, script: str, sink: OutputSink, **kw: Any) -> int:
            sink("stdout", [f"{APP_MODE_LINE} wsgi.py imported once; its own Flask-Migrate runs the steps"])
            return super().run_detached(run_id, script, sink, **kw)

    config = dataclasses.replace(CONFIG, migration=dataclasses.replace(CONFIG.migration, mode="auto"))
    session = Imported(FakeConnection(("absent", None, None), []), FakeDb([BUG]), config=config)
    call, _ = _call(session, CTX)
    outcome = migrate(call)
    assert outcome.status is PhaseStatus.OK and call.context.migrate_mode == "app"
    assert outcome.fact("mode") == "app (auto: the app imported)"
