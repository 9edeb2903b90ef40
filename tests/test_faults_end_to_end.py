"""Faults through a whole ``todobox-deploy run --plain --yes`` on the real sandbox.

* the process killed (SIGKILL) while the migration's detached run is in the middle of its DDL: the next run
  re-probes the host, re-attaches to that run instead of launching it again, and the deploy completes;
* a fix commit with two migration heads, or without its migration file, pushed for real to the origin the
  host fetches from: refused before the stop, the app serving throughout, the database untouched;
* a backup directory on a filesystem too small for the dump: refused before the stop.

To hold the migration mid-run without a fixed sleep, a transaction of the test keeps a metadata lock on
``user``: the migration's first ALTER provably waits behind it (the server's processlist says so).
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest
from run_helpers import (
    HealthWatch,
    PlainProcess,
    app_status,
    events,
    health_url,
    journal_in,
    private_config,
    run_cli,
    wait_for_event,
    wait_until,
)
from statement_log import StatementLog

from todobox_deploy.journal.verify import verify_journal
from todobox_deploy.sandbox.appdb import BUG_REVISION, FIX_REVISION
from todobox_deploy.sandbox.deploy_toml import MIGRATION_FILE
from todobox_deploy.sandbox.gitrepo import git
from todobox_deploy.sandbox.manager import SandboxInfo, sandbox_restore

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

BEFORE_MIGRATE = (
    "backup", "preflight", "rehearsal", "notify", "stop_app", "deploy_code", "verify_files", "db_check",
)  # fmt: skip
RERUN_DDL = "ALTER TABLE%user%ADD COLUMN%api_token%"  # 3e5106ee570c's, re-run by the stamp-first plan


# -- the host, seen from outside the tool -----------------------------------------------------------------


def _admin(info: SandboxInfo) -> pymysql.connections.Connection:
    return pymysql.connect(unix_socket=str(info.db_socket), user="root", database=info.db_name)


def _sql(info: SandboxInfo, statement: str) -> list[tuple[Any, ...]]:
    with _admin(info) as conn, conn.cursor() as cur:
        cur.execute(statement)
        return list(cur.fetchall())


def _db_state(info: SandboxInfo) -> tuple[list[str], str, list[str]]:
    """alembic_version, CHECKSUM TABLE user and the user table's columns."""
    columns = _sql(
        info,
        "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "
        "AND TABLE_NAME = 'user' ORDER BY ORDINAL_POSITION",
    )
    return (
        [str(r[0]) for r in _sql(info, "SELECT version_num FROM alembic_version")],
        str(_sql(info, "CHECKSUM TABLE `user`")[0][1]),
        [str(r[0]) for r in columns],
    )


def _ddl_waiting(info: SandboxInfo) -> bool:
    """The server shows an ALTER on `user` waiting for a metadata lock."""
    rows = _sql(
        info,
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE STATE LIKE "
        "'Waiting for table metadata lock%' AND INFO LIKE 'ALTER TABLE%user%'",
    )
    return bool(rows[0][0])


def _head(info: SandboxInfo) -> str:
    return git("rev-parse", "HEAD", cwd=info.app_dir)


def _yes_run(config: Path, state: Path) -> subprocess.CompletedProcess[str]:
    return run_cli(["run", "--config", str(config), "--plain", "--yes"], state, timeout=200)


@pytest.fixture
def restored(sandbox_reset: SandboxInfo) -> Iterator[SandboxInfo]:
    """The sandbox in the bug state, put back afterwards (origin included) for the tests that follow."""
    yield sandbox_reset
    sandbox_restore(sandbox_reset.directory)


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., PlainProcess]]:
    started: list[PlainProcess] = []

    def start(config: Path, *args: str) -> PlainProcess:
        proc = PlainProcess(config, tmp_path / "state", *args)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.proc.poll() is None:
            proc.kill()


# -- 1. kill -9 while the migration runs ------------------------------------------------------------------


def test_killed_mid_migration_the_next_run_reattaches_and_never_migrates_twice(
    restored: SandboxInfo, tmp_path: Path, spawn: Callable[..., PlainProcess]
) -> None:
    info = restored
    config = private_config(info.config, tmp_path)
    # the ALTER waits on the test's lock across the kill and the next run's start: a generous bound
    config.write_text(
        config.read_text().replace("\n[migration]\n", "\n[migration]\nlock_wait_timeout = 120\n")
    )
    runs = tmp_path / "runs"
    holder = _admin(info)
    try:
        first = spawn(config, "--yes")
        first_journal = first.journal
        # after the pre-flight (which would report the open transaction) and the rehearsal (whose ALTERs
        # on its scratch copy are not the migration's)
        wait_for_event(first_journal, "phase_started", timeout=120, phase="stop_app")
        with StatementLog(info.directory) as log:
            with holder.cursor() as cur:
                cur.execute("BEGIN")
                cur.execute("SELECT * FROM `user` LIMIT 1")
                cur.fetchall()
            wait_for_event(first_journal, "phase_started", timeout=120, phase="migrate")
            first.wait_for(r"(?m)^  #\| \$ migrate \(")  # the launch, as the run's output says it
            wait_until(lambda: _ddl_waiting(info), 60, "the migration's ALTER waiting behind the lock")
            (run_dir,) = [p for p in runs.iterdir() if p.name.startswith("migrate")]
            assert (run_dir / "started").exists() and not (run_dir / "rc").exists()  # mid-run
            first.kill()

            assert not events(first_journal, "phase_finished", phase="migrate")
            assert not events(first_journal, "session_ended")
            assert _ddl_waiting(info)  # the detached run goes on on the host without the tool

            second = spawn(config, "--yes")
            second.wait_for("still running on the host: re-attaching", timeout=120)
            holder.rollback()  # the lock goes: the DDL goes on while the new run follows it
            code = second.wait(180)
            reruns = log.queries(RERUN_DDL)
    finally:
        holder.close()

    out = second.output
    assert code == 0, out[-4000:] + second.stderr
    assert "deploy complete" in out
    # the host re-probed, the resume offered at the migration, the earlier phases carried, not re-run
    assert "did not end" in out and "the earlier session ended while migrate was running" in out, out
    assert "resume at: migrate" in out and "resume at: migrate (already done" not in out, out
    second_journal = second.journal
    offered = events(second_journal, "resume_offered")[0]
    assert offered["accepted"] is True and offered["resume_at"] == "migrate", offered
    # the host was asked, not the journal trusted: the run's stamp moved alembic_version meanwhile
    assert ["database revision", BUG_REVISION, "366e5694a9ad"] in offered["rows"], offered["rows"]
    assert ["app", "stopped", "down"] in offered["rows"], offered["rows"]
    assert [e["phase"] for e in events(second_journal, "phase_carried")] == list(BEFORE_MIGRATE)
    started = [e["phase"] for e in events(second_journal, "phase_started")]
    assert started == ["migrate", "verify_migration", "start_app", "post_verify"], started
    # the migration ran once: one run on the host (started once, exit 0), the re-run DDL received once
    # by the server (a second run would send it again and fail on the duplicate column), no second launch
    assert [p.name for p in runs.iterdir() if p.name.startswith("migrate")] == [run_dir.name]
    assert (run_dir / "rc").read_text() == "0\n"
    assert (run_dir / "log").read_text().count("Running upgrade 366e5694a9ad -> 3e5106ee570c") == 1
    assert len(reruns) == 1, reruns
    assert not re.search(r"(?m)^  #\| \$ migrate \(", out)  # the second run launched nothing
    (migrated,) = events(second_journal, "phase_finished", phase="migrate")
    assert migrated["status"] == "ok" and migrated["facts"]["run id"] == run_dir.name, migrated
    assert _db_state(info)[0] == [FIX_REVISION]
    assert app_status(info.app_url) == 200
    assert verify_journal(first_journal).ok and verify_journal(second_journal).ok


# -- 2. a broken revision graph in the fix commit ---------------------------------------------------------

_SECOND_HEAD = '''"""a second head beside the fix

Revision ID: 0badbead0001
Revises: c682ef478e45
"""
revision = "0badbead0001"
down_revision = "c682ef478e45"
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
'''


def _second_head(work: Path) -> str:
    (work / "migrations" / "versions" / "0badbead0001_second_head.py").write_text(_SECOND_HEAD)
    return "Add a migration on c682ef478e45 beside d1f2e3c4b5a6"


def _no_migration_file(work: Path) -> str:
    (work / MIGRATION_FILE).unlink()
    return "Drop the fix's migration file"


def _push_to_origin(info: SandboxInfo, change: Callable[[Path], str]) -> str:
    """A commit on top of origin's master, made by ``change`` in a clone and pushed to origin (what the
    host fetches); returns it. ``sandbox_restore`` puts origin's master back."""
    origin = info.directory / "git" / "todobox.git"
    with tempfile.TemporaryDirectory(prefix="todobox-push-") as tmp:
        work = Path(tmp) / "work"
        git("clone", "-q", "--branch", "master", str(origin), str(work))
        git("config", "user.name", "a developer", cwd=work)
        git("config", "user.email", "dev@todobox.invalid", cwd=work)
        message = change(work)
        git("add", "-A", cwd=work)
        git("commit", "-q", "-m", message, cwd=work)
        git("push", "-q", "origin", "HEAD:master", cwd=work)
        return git("rev-parse", "HEAD", cwd=work)


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (
            _second_head,
            "blocked: the migration files have 2 heads (0badbead0001, d1f2e3c4b5a6), expected d1f2e3c4b5a6; "
            "merge the heads (flask db merge) and commit",
        ),
        (_no_migration_file, f"{MIGRATION_FILE} is not in {{commit}}: the fix commit lacks the migration"),
    ],
    ids=["two-heads", "no-migration-file"],
)
def test_a_broken_revision_graph_is_refused_before_the_stop(
    restored: SandboxInfo, tmp_path: Path, change: Callable[[Path], str], says: str
) -> None:
    info = restored
    config = private_config(info.config, tmp_path)
    pushed = _push_to_origin(info, change)
    head, db_before = _head(info), _db_state(info)
    with HealthWatch(health_url(info.config)) as watch:
        run = _yes_run(config, tmp_path / "state")
    out = run.stdout
    assert run.returncode == 1, out[-4000:] + run.stderr
    assert f"preflight did not succeed: {says.format(commit=pushed[:12])}" in out, out
    assert "(nothing was stopped)" in out and "host state: app up" in out, out
    journal = journal_in(out)
    assert _context_value(journal, "commit_target") == pushed  # the pushed commit was the one judged
    assert not events(journal, "phase_started", phase="stop_app")
    assert [e["phase"] for e in events(journal, "phase_started")] == ["backup", "preflight"]
    assert watch.answers and set(watch.answers) == {200}, watch.answers  # served throughout
    assert (_head(info), _db_state(info)) == (head, db_before)  # code and database untouched


def _context_value(journal: Path, key: str) -> Any:
    value = None
    for e in events(journal, "context_updated"):
        value = e["changes"].get(key, value)
    return value


# -- 3. the backup's filesystem too small -----------------------------------------------------------------


@contextlib.contextmanager
def _tmpfs(where: Path, size: str) -> Iterator[Path]:
    where.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)


def test_a_backup_filesystem_too_small_is_refused_before_the_stop(
    sandbox_reset: SandboxInfo, tmp_path: Path
) -> None:
    info = sandbox_reset
    config = private_config(info.config, tmp_path)
    with _tmpfs(tmp_path / "tiny", "256k") as tiny:
        text = re.sub(r'(?m)^directory = ".*"$', f'directory = "{tiny}"', config.read_text())
        assert f'directory = "{tiny}"' in text
        config.write_text(text)
        head, db_before = _head(info), _db_state(info)
        with HealthWatch(health_url(info.config)) as watch:
            run = _yes_run(config, tmp_path / "state")
        left = list(tiny.iterdir())
    out = run.stdout
    assert run.returncode == 1, out[-4000:] + run.stderr
    assert "backup did not succeed: refused before dumping:" in out, out
    assert f"free in {tiny}; needs up to" in out and "host state: app up" in out, out
    journal = journal_in(out)
    assert [e["phase"] for e in events(journal, "phase_started")] == ["backup"]
    assert left == []  # nothing was written to the small filesystem
    assert watch.answers and set(watch.answers) == {200}, watch.answers
    assert (_head(info), _db_state(info)) == (head, db_before)
