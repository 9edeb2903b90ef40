"""The migrate phase on the real sandbox: standalone and app mode, never twice, no password anywhere, a held
metadata lock reported and bounded, and an app that cannot even be imported."""

from __future__ import annotations

import dataclasses
import inspect
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest
from run_helpers import Poller, proc_files

from todobox_deploy.config import DeployConfig, MigrateMode, load_config
from todobox_deploy.core.context import DeployContext
from todobox_deploy.core.envfile import password_in_env_text
from todobox_deploy.core.outcome import PhaseOutcome, PhaseStatus
from todobox_deploy.core.streams import Stream
from todobox_deploy.engine.migrate_runner import probe_app_import
from todobox_deploy.engine.phases.migrate import migrate
from todobox_deploy.engine.phases.spec import PhaseCall
from todobox_deploy.engine.session import DeploySession
from todobox_deploy.remote.connection import SshConnection
from todobox_deploy.sandbox.manager import SandboxInfo, sandbox_restore

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

HEAD, BUG = "d1f2e3c4b5a6", "c682ef478e45"
UPGRADE_LINE = f"Running upgrade {BUG} -> {HEAD}"


def _config(info: SandboxInfo, tmp_path: Path, mode: MigrateMode, lock_wait: int = 30) -> DeployConfig:
    config = load_config(info.config)
    return dataclasses.replace(
        config,
        target=dataclasses.replace(config.target, run_root=str(tmp_path / "runs")),
        migration=dataclasses.replace(config.migration, mode=mode, lock_wait_timeout=lock_wait),
    )


def _password(config: DeployConfig) -> str:
    password = password_in_env_text(Path(config.app.env_file or "").read_text(), "DATABASE_URL")
    assert password
    return password


def _deploy_code(config: DeployConfig) -> DeployContext:
    """What deploy_code and db_check leave: the work tree fast-forwarded, the commit and revision known."""
    app = config.app.path
    subprocess.run(["git", "-C", app, "merge", "--ff-only", "-q", "origin/master"], check=True)
    head = subprocess.run(["git", "-C", app, "rev-parse", "HEAD"], check=True, capture_output=True, text=True)
    return DeployContext(
        commit_target=head.stdout.strip(), commit_after=head.stdout.strip(), db_revision_before=BUG
    )


class Phase:
    """The migrate body run for real over a fresh session, called directly: the flow's gate wants a backup
    (``needs``), which these tests of the migration itself do not make."""

    def __init__(self, config: DeployConfig, tmp_path: Path) -> None:
        self.config, self.tmp_path = config, tmp_path
        self.seen: list[tuple[Stream, str]] = []

    def session(self) -> DeploySession:
        config = self.config
        return DeploySession(
            config,
            connection_factory=lambda: SshConnection(
                config.target, pinned_known_hosts=self.tmp_path / "pins"
            ),
            environ={},
        )

    def __call__(self, context: DeployContext) -> tuple[PhaseOutcome, DeployContext]:
        session = self.session()
        call = PhaseCall(
            session, lambda s, ls: self.seen.extend((s, x) for x in ls), threading.Event(), context
        )
        try:
            return migrate(call), call.context
        finally:
            session.close()

    @property
    def text(self) -> str:
        return "\n".join(line for _, line in self.seen)

    def log(self, run_id: str) -> Path:
        return self.tmp_path / "runs" / run_id / "log"


def _admin(info: SandboxInfo) -> pymysql.connections.Connection:
    return pymysql.connect(
        unix_socket=str(info.db_socket), user="root", database=info.db_name, autocommit=True
    )


def _schema(info: SandboxInfo) -> tuple[list[str], bool, bool]:
    with _admin(info) as conn, conn.cursor() as cur:
        cur.execute("SELECT version_num FROM alembic_version")
        versions = [r[0] for r in cur.fetchall()]
        cur.execute(
            "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA=%s AND TABLE_NAME='user'"
            " AND COLUMN_NAME='api_token'",
            (info.db_name,),
        )
        column = cur.fetchone()[0] == 1  # type: ignore[index]
        cur.execute("SHOW INDEX FROM `user` WHERE Key_name='ix_user_api_token' AND Non_unique=0")
        index = bool(cur.fetchall())
    return versions, column, index


class ProcWatch(Poller):
    """Polls every /proc/PID/cmdline and environ for a secret while a command runs on the (local) host."""

    join_timeout = None

    def __init__(self, secret: str, marker: str) -> None:
        super().__init__(0.02, "proc-watch")
        self.secret, self.marker = secret.encode(), marker.encode()
        self.leaks: list[str] = []
        self.saw_marker = False

    def poll(self) -> None:
        for pid, name, data in proc_files():
            if self.secret in data:
                self.leaks.append(f"{pid}/{name}")
            if name == "cmdline" and self.marker in data:
                self.saw_marker = True


def test_standalone_upgrades_the_bug_state_and_no_password_shows(
    sandbox_reset: SandboxInfo, tmp_path: Path
) -> None:
    config = _config(sandbox_reset, tmp_path, "standalone")
    password = _password(config)
    context = _deploy_code(config)
    phase = Phase(config, tmp_path)
    with ProcWatch(password, "todobox-migrate") as procs:
        outcome, after = phase(context)
    assert outcome.status is PhaseStatus.OK, outcome.summary
    assert _schema(sandbox_reset) == ([HEAD], True, True)
    assert after.migrate_mode == "standalone" and after.db_revision_after == HEAD
    assert outcome.fact("mode") == "standalone (set by [migration] mode)"
    assert outcome.fact("revision") == f"{BUG} -> {HEAD}" and outcome.fact("exit code") == "0"
    assert UPGRADE_LINE in phase.text and "the app is not imported" in phase.text
    # the fix migration asks for lock_wait_timeout = 60 itself: the configured bound caps it
    assert "sets lock_wait_timeout = 60; [migration] lock_wait_timeout caps it at 30 s" in phase.text
    # (d) the password never showed in any process's argv or environment, the output, or the host's log
    assert procs.saw_marker, "the /proc poll never overlapped the migration process"
    assert procs.leaks == []
    assert password not in phase.text
    assert password not in phase.log(outcome.fact("run id") or "").read_text()


def test_app_mode_upgrades_and_a_second_call_never_runs_it_again(
    sandbox_reset: SandboxInfo, tmp_path: Path
) -> None:
    config = _config(sandbox_reset, tmp_path, "app")
    context = _deploy_code(config)
    phase = Phase(config, tmp_path)
    outcome, after = phase(context)
    assert outcome.status is PhaseStatus.OK, outcome.summary
    assert _schema(sandbox_reset) == ([HEAD], True, True)
    assert after.migrate_mode == "app" and after.migration_run == outcome.fact("run id")
    log = phase.log(after.migration_run or "")
    size = log.stat().st_size
    assert log.read_text().count(UPGRADE_LINE) == 1

    # (c) the same deploy again, from the context before the run and from the one after it
    for ctx in (context, after):
        phase.seen.clear()
        again, _ = phase(ctx)
        assert again.status is PhaseStatus.OK, again.summary
        assert "had already finished (not run again)" in again.summary
        assert again.fact("run id") == outcome.fact("run id") and again.fact("exit code") == "0"
        assert UPGRADE_LINE in phase.text  # the recorded log re-read as evidence
    assert log.stat().st_size == size and log.read_text().count(UPGRADE_LINE) == 1


@pytest.fixture
def holder(sandbox_reset: SandboxInfo) -> Iterator[tuple[pymysql.connections.Connection, int]]:
    """An app-user session with an open transaction that has read `user` (it holds a metadata lock)."""
    config = load_config(sandbox_reset.config)
    conn = pymysql.connect(
        host="127.0.0.1",
        port=sandbox_reset.db_port,
        user=config.database.user,
        password=_password(config),
        database=sandbox_reset.db_name,
    )
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT CONNECTION_ID()")
            session_id = int(cur.fetchone()[0])  # type: ignore[index]
            cur.execute("BEGIN")
            cur.execute("SELECT * FROM `user` LIMIT 1")
            cur.fetchall()
        yield conn, session_id
    finally:
        conn.rollback()
        conn.close()


def test_a_held_metadata_lock_is_reported_and_bounded(
    sandbox_reset: SandboxInfo,
    holder: tuple[pymysql.connections.Connection, int],
    tmp_path: Path,
) -> None:
    _, holder_id = holder
    config = _config(sandbox_reset, tmp_path, "auto", lock_wait=3)
    context = _deploy_code(config)
    phase = Phase(config, tmp_path)
    started = time.monotonic()
    outcome, after = phase(context)
    elapsed = time.monotonic() - started
    assert outcome.status is PhaseStatus.FAILED, outcome.summary
    assert after.migrate_mode == "app"  # auto: the sandbox app imports
    assert elapsed < 30, f"the lock wait was not bounded: {elapsed:.1f} s"
    assert "1205" in outcome.summary and "MySQL DDL is not transactional" in outcome.summary
    assert f"the DB is at {BUG}" in outcome.summary
    assert "caps it at 3 s" in phase.text
    # the waiting ALTER and the holder, named in the output and in the facts
    assert "WARNING: metadata lock: session" in phase.text and "ALTER TABLE" in phase.text
    assert f"held by session {holder_id} (todobox@" in phase.text
    locks = outcome.fact("metadata locks") or ""
    assert "missing PROCESS privilege" in locks and f"{holder_id} (todobox@" in locks
    assert "the metadata lock was possibly held by" in outcome.summary
    assert f"session {holder_id} (todobox@" in outcome.summary
    # the DB is not left stalled: no waiter queued on the table, a new reader gets through at once
    with _admin(sandbox_reset) as admin, admin.cursor() as cur:
        cur.execute(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST"
            " WHERE STATE LIKE 'Waiting for table metadata lock%'"
        )
        assert cur.fetchone()[0] == 0  # type: ignore[index]
        cur.execute("SET SESSION lock_wait_timeout = 2")
        cur.execute("SELECT COUNT(*) FROM `user`")
        assert cur.fetchone()[0] > 0  # type: ignore[index]
    assert _schema(sandbox_reset) == ([BUG], False, False)


@pytest.mark.skipif(
    "state" not in inspect.signature(sandbox_restore).parameters,
    reason="the sandbox has no named states yet (sandbox_restore(state=...) is another helper's work)",
)
def test_an_app_that_cannot_import_is_migrated_standalone(sandbox: SandboxInfo, tmp_path: Path) -> None:
    info = sandbox_restore(sandbox.directory, state="import-queries-user")
    try:
        config = _config(info, tmp_path, "auto")
        context = _deploy_code(config)
        phase = Phase(config, tmp_path)
        session = phase.session()
        try:
            ok, why = probe_app_import(session)
        finally:
            session.close()
        assert not ok and "cannot be imported" in why and "Unknown column" in why
        outcome, after = phase(context)
        assert outcome.status is PhaseStatus.OK, outcome.summary
        assert after.migrate_mode == "standalone"
        assert (outcome.fact("mode") or "").startswith("standalone (auto: the app does not import")
        assert "Unknown column" in (outcome.fact("mode") or "")
        assert "running the app's migration scripts standalone instead" in phase.text
        assert _schema(info) == ([HEAD], True, True)
    finally:
        sandbox_restore(sandbox.directory)


def test_cancel_during_a_metadata_lock_wait_stops_the_ddl(
    sandbox_reset: SandboxInfo,
    holder: tuple[pymysql.connections.Connection, int],
    tmp_path: Path,
) -> None:
    config = _config(sandbox_reset, tmp_path, "standalone", lock_wait=60)
    context = _deploy_code(config)
    phase = Phase(config, tmp_path)
    session = phase.session()
    waiting = threading.Event()

    def sink(stream: Stream, lines: list[str]) -> None:
        phase.seen.extend((stream, line) for line in lines)
        if any(line.startswith("WARNING: metadata lock:") for line in lines):
            waiting.set()

    call = PhaseCall(session, sink, threading.Event(), context)
    result: list[PhaseOutcome] = []
    worker = threading.Thread(target=lambda: result.append(migrate(call)))
    started = time.monotonic()
    worker.start()
    try:
        assert waiting.wait(30), phase.text
        call.cancel.set()
        worker.join(30)
    finally:
        call.cancel.set()
        worker.join(30)
        session.close()
    assert result and result[0].status is PhaseStatus.CANCELLED, result
    assert time.monotonic() - started < 30
    assert f"the DB is at {BUG}" in result[0].summary and "not transactional" in result[0].summary
    assert result[0].fact("exit code") == "143"  # the wrapper recorded the TERM
    deadline = time.monotonic() + 10
    while True:
        with _admin(sandbox_reset) as admin, admin.cursor() as cur:
            cur.execute(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST"
                " WHERE STATE LIKE 'Waiting for table metadata lock%'"
            )
            left = cur.fetchone()[0]  # type: ignore[index]
        if left == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert left == 0, "the cancelled ALTER still waits on the server"
