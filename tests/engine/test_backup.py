"""The backup phase on the real sandbox: a verified dump restored for proof, pruning, refusals, resume."""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import hashlib
import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from run_helpers import Poller, proc_files

from todobox_deploy.checklist import CHECKLIST
from todobox_deploy.config import DeployConfig, load_config
from todobox_deploy.core.context import DeployContext
from todobox_deploy.core.envfile import password_in_env_text
from todobox_deploy.core.outcome import PhaseOutcome, PhaseStatus
from todobox_deploy.core.streams import Stream
from todobox_deploy.engine import backup_cmd as bc
from todobox_deploy.engine.flow import DeployFlow
from todobox_deploy.engine.phases import PHASES
from todobox_deploy.engine.session import DeploySession
from todobox_deploy.journal.journal import Journal
from todobox_deploy.remote.connection import SshConnection
from todobox_deploy.remote.detached import DetachedRun
from todobox_deploy.remote.mysql import mysql_command
from todobox_deploy.sandbox.manager import SandboxInfo
from todobox_deploy.sandbox.mariadb import ThrowawayMariaDB

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


@dataclass
class Ran:
    outcome: PhaseOutcome
    lines: list[tuple[Stream, str]]
    transcript: Path
    journal: Path
    context: DeployContext
    commands: list[str] = field(default_factory=list)

    def text(self) -> str:
        return "\n".join(line for _, line in self.lines)


@dataclass
class Env:
    info: SandboxInfo
    config: DeployConfig
    tmp: Path
    password: str
    run_ids: list[str] = field(default_factory=list)  # detached runs to clear from the host afterwards

    def with_backup(self, **changes: Any) -> DeployConfig:
        return dataclasses.replace(self.config, backup=dataclasses.replace(self.config.backup, **changes))

    def admin(self, database: str | None = None) -> Any:
        return ThrowawayMariaDB(self.info.directory / "db").admin_connect(database)

    def session(self, config: DeployConfig) -> DeploySession:
        pins = self.tmp / "pins"
        return DeploySession(
            config,
            connection_factory=lambda: SshConnection(config.target, pinned_known_hosts=pins),
            environ={},
        )

    def run(
        self,
        config: DeployConfig,
        context: DeployContext | None = None,
        cancel: threading.Event | None = None,
        on_line: Callable[[str], None] | None = None,
    ) -> Ran:
        """The real phase body, run by a DeployFlow (journal and transcript) over a fresh session."""
        session = self.session(config)
        n = len(list(self.tmp.glob("run-*")))
        where = self.tmp / f"run-{n}"
        journal = where / "journal.jsonl"
        where.mkdir()
        flow = DeployFlow(
            CHECKLIST,
            PHASES,
            session=session,
            operator="tester",
            host=config.target.host,
            journal=Journal(journal, operator="tester", host=config.target.host),
            transcript_dir=where,
            context=context,
        )
        seen: list[tuple[Stream, str]] = []

        def sink(stream: Stream, lines: list[str]) -> None:
            seen.extend((stream, ln) for ln in lines)
            for ln in lines:
                if on_line is not None:
                    on_line(ln)

        try:
            flow.begin("backup")
            commands_before = len(session.commands)
            outcome = flow.execute("backup", sink, cancel)
            commands = [c.command for c in session.commands[commands_before:]]
        finally:
            flow.close(0, "the test ended")
            session.close()
        self.run_ids += [v for k, v in outcome.facts if k == "run id"]
        return Ran(outcome, seen, where / "backup.log", journal, flow.context, commands)


@pytest.fixture
def env(sandbox_reset: SandboxInfo, tmp_path: Path) -> Iterator[Env]:
    config = load_config(sandbox_reset.config)
    assert sandbox_reset.app_dir is not None
    password = password_in_env_text((sandbox_reset.app_dir / ".env").read_text(), "DATABASE_URL")
    assert password
    config = dataclasses.replace(
        config, backup=dataclasses.replace(config.backup, directory=str(tmp_path / "backups"))
    )
    env = Env(sandbox_reset, config, tmp_path, password)
    yield env
    runs = Path.home() / ".cache" / "todobox-deploy" / "runs"  # the sandbox host is this machine
    for run_id in env.run_ids:
        shutil.rmtree(runs / run_id, ignore_errors=True)


def _checksum(admin: Any, table: str) -> int:
    with admin.cursor() as cur:
        cur.execute(f"CHECKSUM TABLE {table}")
        return int(cur.fetchone()[1])


def _mariadb_client() -> str:
    for name in ("mariadb", "mysql"):
        for d in ("/usr/bin", "/usr/local/bin"):
            if os.access(f"{d}/{name}", os.X_OK):
                return f"{d}/{name}"
    pytest.skip("no mariadb client to restore with")


def test_a_real_backup_is_verified_and_restores_to_the_same_data(env: Env) -> None:
    ran = env.run(env.config)
    assert ran.outcome.status is PhaseStatus.OK, ran.outcome.summary
    record = ran.context.backup
    assert record is not None and record.verified and ran.context.backup_run is None
    path = Path(record.path)
    assert path.parent == Path(env.config.backup.directory)
    assert Path(env.config.backup.directory).stat().st_mode & 0o777 == 0o700  # created for the backup
    assert path.stat().st_mode & 0o777 == 0o600
    assert bc.backup_pattern("todobox").fullmatch(path.name)
    assert record.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert record.size == path.stat().st_size
    assert record.tables == ("alembic_version", "user")
    assert ran.outcome.fact("sha256") == record.sha256
    assert (
        ran.outcome.summary
        == f"backup verified: {path} ({bc.human_bytes(record.size)}, sha256 {record.sha256[:12]}…)"
    )
    checks = ran.outcome.fact("checks passed") or ""
    for check in ("mariadb-dump 0, gzip 0", "gzip integrity", "trailer (-- Dump completed", "all 2 tables"):
        assert check in checks
    assert "10.11" in (ran.outcome.fact("server version") or "")
    assert "mariadb-dump" in (ran.outcome.fact("dump program") or "")
    assert "free in" in (ran.outcome.fact("free space before") or "")
    assert not list(path.parent.glob("*.part"))
    # the password went over stdin only: not in what the operator saw, the transcript or the journal
    for text in (ran.text(), ran.transcript.read_text(), ran.journal.read_text(), "\n".join(ran.commands)):
        assert env.password not in text
    assert '"backup_run"' in ran.journal.read_text()  # the run id was journaled before the dump

    # the real proof: restore into a scratch schema and compare CHECKSUM TABLE with production
    scratch = f"todobox_verify_{os.getpid()}"
    admin = env.admin()
    try:
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{scratch}`")
        client = [_mariadb_client(), "--no-defaults", f"--socket={env.info.db_socket}", "-u", "root", scratch]
        restored = subprocess.run(client, input=gzip.decompress(path.read_bytes()), capture_output=True)
        assert restored.returncode == 0, restored.stderr.decode()
        assert _checksum(admin, f"`{scratch}`.`user`") == _checksum(admin, "todobox.`user`")
        assert _checksum(admin, f"`{scratch}`.`alembic_version`") == _checksum(
            admin, "todobox.alembic_version"
        )
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{scratch}`")
        admin.close()

    # a resumed deploy calls the phase again: it shows the same backup and dumps nothing new
    again = env.run(env.config, context=ran.context)
    assert again.outcome.status is PhaseStatus.OK and again.outcome.summary.startswith("already made")
    assert sorted(path.parent.iterdir()) == [path]
    assert not any("detached run" in c for c in again.commands)


class ProcWatch(Poller):
    """Reads every process's cmdline and environ, scan after scan, until stopped: who had the needle,
    who ran."""

    join_timeout = None

    def __init__(self, needle: bytes) -> None:
        super().__init__(0, "proc-watch")
        self.needle = needle
        self.leaks: list[tuple[str, str]] = []
        self.programs: set[str] = set()

    def poll(self) -> None:
        for pid, part, data in proc_files():
            if self.needle in data:
                self.leaks.append((pid, part))
            if part == "cmdline" and data:
                self.programs.add(os.path.basename(data.split(b"\0", 1)[0]).decode(errors="replace"))


@contextlib.contextmanager
def bulk_rows(env: Env, rows: int) -> Iterator[None]:
    """An extra table in the app's schema so that the dump runs long enough to be watched."""
    admin = env.admin("todobox")
    try:
        with admin.cursor() as cur:
            cur.execute(
                "CREATE TABLE todobox.bulk (id INT PRIMARY KEY, pad CHAR(200)) "
                f"SELECT seq AS id, REPEAT(MD5(seq), 6) AS pad FROM seq_1_to_{int(rows)}"
            )
        yield
    finally:
        with admin.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS todobox.bulk")
        admin.close()


def test_the_password_is_never_in_any_process_while_the_dump_runs(env: Env) -> None:
    with bulk_rows(env, 150_000), ProcWatch(env.password.encode()) as watch:
        ran = env.run(env.config)
    assert ran.outcome.status is PhaseStatus.OK, ran.outcome.summary
    assert "mariadb-dump" in watch.programs and "gzip" in watch.programs  # the watch really saw the dump
    assert watch.leaks == []
    assert ran.context.backup is not None and "bulk" in ran.context.backup.tables
    assert env.password not in ran.text() and env.password not in ran.transcript.read_text()


def test_keep_prunes_older_backups_of_this_tool_only(env: Env) -> None:
    directory = Path(env.config.backup.directory)
    directory.mkdir(mode=0o700)
    old = [
        "todobox-20200101T000000Z.sql.gz",
        "todobox-20200102T000000Z.sql.gz",
        "todobox-20200103T000000Z.sql",
    ]
    foreign = ["notes.sql.gz", "other-20200101T000000Z.sql.gz", "todobox-20200101T000000Z.sql.gz.unverified"]
    for name in old + foreign:
        (directory / name).write_bytes(b"x")
    ran = env.run(env.with_backup(keep=2))
    assert ran.outcome.status is PhaseStatus.OK, ran.outcome.summary
    assert ran.context.backup is not None
    new = Path(ran.context.backup.path).name
    assert sorted(p.name for p in directory.iterdir()) == sorted(
        [new, "todobox-20200103T000000Z.sql", *foreign]
    )
    assert ran.outcome.fact("pruned") == "todobox-20200102T000000Z.sql.gz, todobox-20200101T000000Z.sql.gz"
    assert any("pruned (keep 2)" in line for _, line in ran.lines)


@contextlib.contextmanager
def tmpfs(where: Path, size: str, options: str = "") -> Iterator[Path]:
    where.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700{options}", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root and mount permission): {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)


def test_a_too_small_filesystem_is_refused_before_dumping(env: Env) -> None:
    with tmpfs(env.tmp / "tiny", "256k") as tiny:
        ran = env.run(env.with_backup(directory=str(tiny)))
        assert ran.outcome.status is PhaseStatus.FAILED
        assert ran.outcome.summary.startswith("refused before dumping:")
        assert f"free in {tiny}; needs up to" in ran.outcome.summary
        assert list(tiny.iterdir()) == []
    assert not any("detached run" in c for c in ran.commands)
    assert ran.context.backup is None and ran.context.backup_run is None


def test_a_read_only_backup_directory_is_refused_before_dumping(env: Env) -> None:
    with tmpfs(env.tmp / "ro", "1m", ",ro") as ro:
        ran = env.run(env.with_backup(directory=str(ro)))
    assert ran.outcome.status is PhaseStatus.FAILED
    assert ran.outcome.summary == f"the backup directory {ro} is not writable on the host"
    assert not any("detached run" in c for c in ran.commands)


def test_a_compressor_failing_on_a_full_disk_fails_the_backup_and_leaves_nothing(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    # information_schema's sizes are estimates: say the dump fits, then let the disk fill up under gzip
    monkeypatch.setattr(bc, "space_needed", lambda estimate, compression: 0)
    with tmpfs(env.tmp / "full", "64k") as full:
        ran = env.run(env.with_backup(directory=str(full)))
        assert ran.outcome.status is PhaseStatus.FAILED
        assert "the compressor stage (gzip) failed" in ran.outcome.summary, ran.outcome.summary
        assert "no backup file was kept" in ran.outcome.summary
        assert list(full.iterdir()) == []
    assert "No space left on device" in ran.outcome.summary  # the host's own words, as the last output
    assert ran.context.backup is None and ran.context.backup_run is None


@contextlib.contextmanager
def user_table_locked(env: Env) -> Iterator[Callable[[], None]]:
    """Hold a WRITE lock on todobox.user: a dump waits on it until ``release()``."""
    admin = env.admin()
    with admin.cursor() as cur:
        cur.execute("LOCK TABLES todobox.`user` WRITE")
    released = False

    def release() -> None:
        nonlocal released
        if not released:
            released = True
            with admin.cursor() as cur:
                cur.execute("UNLOCK TABLES")

    try:
        yield release
    finally:
        release()
        admin.close()


def test_a_resumed_deploy_reattaches_to_the_running_dump_instead_of_starting_another(env: Env) -> None:
    config = env.config
    stamp = "20200101T000000Z"
    run_id = bc.run_id_of(stamp, os.urandom(4).hex())
    env.run_ids.append(run_id)
    final = f"{config.backup.directory}/{bc.backup_name('todobox', stamp, 'gzip')}"
    Path(config.backup.directory).mkdir(mode=0o700)
    client = bc.DumpClient(
        "mariadb-dump", "/usr/bin/mariadb-dump", "mariadb-dump Ver 10.19 Distrib 10.11-MariaDB"
    )
    flags = bc.dump_flags(config.database, client, server_is_mariadb=True, gtid_mode=None)
    argv, stdin = mysql_command(
        dataclasses.replace(config.database, dump=client.path), env.password, flags, tool="dump"
    )
    with user_table_locked(env) as release:
        # an earlier session launched the dump, journaled its run id, and died
        with SshConnection(config.target, pinned_known_hosts=env.tmp / "pins") as conn:
            DetachedRun(conn, run_id).launch(bc.dump_script(argv, "gzip", final, "__m"), stdin=stdin)
            assert conn.run_state(run_id)[0] == "running"

        def on_line(line: str) -> None:
            if "re-attaching" in line:
                release()

        ran = env.run(config, context=DeployContext(backup_run=run_id), on_line=on_line)
    assert ran.outcome.status is PhaseStatus.OK, ran.outcome.summary
    assert "re-attaching, not starting another" in ran.text()
    assert "stage exit statuses: mariadb-dump 0, gzip 0" in ran.text()  # the run's log, from the start
    assert not any("detached run" in c for c in ran.commands)  # no second launch
    assert ran.context.backup is not None and ran.context.backup.path == final
    assert ran.context.backup_run is None
    assert [p.name for p in Path(config.backup.directory).iterdir()] == [Path(final).name]


def test_cancelling_the_dump_leaves_no_file(env: Env) -> None:
    cancel = threading.Event()

    def on_line(line: str) -> None:
        if line.startswith("$ ") and "mariadb-dump" in line:
            cancel.set()

    with user_table_locked(env):  # the dump waits on the lock until it is cancelled
        ran = env.run(env.config, cancel=cancel, on_line=on_line)
    assert ran.outcome.status is PhaseStatus.CANCELLED, ran.outcome.summary
    assert list(Path(env.config.backup.directory).iterdir()) == []
    assert ran.context.backup is None and ran.context.backup_run is None
