"""Rollback on the real sandbox: a deploy reproduced by hand, then ``open_rollback_flow`` run to its end."""

from __future__ import annotations

import io
import secrets
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from run_helpers import app_status, private_config, read_events, wait_until

from todobox_deploy.checklist.progress import ACCEPTABLE
from todobox_deploy.config import DeployConfig, load_config
from todobox_deploy.core.context import DeployContext
from todobox_deploy.core.outcome import PhaseOutcome
from todobox_deploy.engine.flow import DeployFlow
from todobox_deploy.engine.phases.backup import backup
from todobox_deploy.engine.phases.spec import PhaseCall
from todobox_deploy.engine.rollback_launch import NoDeploySession, open_rollback_flow
from todobox_deploy.engine.session import DeploySession
from todobox_deploy.journal.journal import Journal
from todobox_deploy.plain import Console, PlainRun
from todobox_deploy.remote.connection import SshConnection
from todobox_deploy.sandbox.appdb import BUG_REVISION, DB_NAME, FIX_REVISION
from todobox_deploy.sandbox.manager import SandboxInfo, sandbox_restore
from todobox_deploy.sandbox.mariadb import ThrowawayMariaDB

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

ADMIN, ADMIN_ENV = "rbadmin", "TODOBOX_TEST_ROLLBACK_ADMIN"


@dataclass
class Host:
    info: SandboxInfo
    config: DeployConfig
    db: ThrowawayMariaDB
    sessions: Path
    environ: dict[str, str]
    pins: Path

    def sql(self, statement: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        conn = self.db.admin_connect(DB_NAME)
        try:
            with conn.cursor() as cur:
                cur.execute(statement, args)
                return list(cur.fetchall())
        finally:
            conn.commit()
            conn.close()

    def checksum(self) -> str:
        return str(self.sql("CHECKSUM TABLE `user`")[0][1])

    def revision(self) -> list[str]:
        return [r[0] for r in self.sql("SELECT version_num FROM alembic_version")]

    def columns(self) -> list[str]:
        rows = self.sql(
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s "
            "AND TABLE_NAME = 'user' ORDER BY ORDINAL_POSITION",
            (DB_NAME,),
        )
        return [r[0] for r in rows]

    def git(self, *argv: str) -> str:
        app = str(self.info.app_dir)
        return subprocess.run(
            ["git", "-C", app, *argv], check=True, capture_output=True, text=True
        ).stdout.strip()

    def session(self) -> DeploySession:
        def connect() -> SshConnection:
            return SshConnection(self.config.target, pinned_known_hosts=self.pins)

        return DeploySession(self.config, connection_factory=connect, environ=self.environ)

    def restart_app(self) -> None:
        conf = str(self.config.app.supervisor_config)
        subprocess.run(
            [sys.executable, "-m", "supervisor.supervisorctl", "-c", conf, "restart", "todobox"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        health = str(self.config.app.health_url)
        wait_until(lambda: app_status(health, timeout=2) == 200, 30, f"{health} to answer 200")


@pytest.fixture
def host(sandbox_reset: SandboxInfo, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Host]:
    """The sandbox in its bug state, a private config (own run root) with an admin account for the scratch
    restore (unless the test is parametrized with ``host=False``), and an empty sessions folder."""
    with_admin = getattr(request, "param", True)
    db = ThrowawayMariaDB(sandbox_reset.directory / "db")
    password = secrets.token_urlsafe(18)
    conn = db.admin_connect()
    try:
        with conn.cursor() as cur:
            for where in ("localhost", "127.0.0.1"):
                cur.execute("CREATE OR REPLACE USER %s@%s IDENTIFIED BY %s", (ADMIN, where, password))
                cur.execute("GRANT ALL PRIVILEGES ON *.* TO %s@%s", (ADMIN, where))
    finally:
        conn.close()
    path = private_config(sandbox_reset.config, tmp_path)
    if with_admin:
        admin = f'\n[database]\nadmin_user = "{ADMIN}"\nadmin_password_env = "{ADMIN_ENV}"\n'
        path.write_text(path.read_text().replace("\n[database]\n", admin, 1))
    config = load_config(path)
    yield Host(sandbox_reset, config, db, tmp_path / "sessions", {ADMIN_ENV: password}, tmp_path / "pins")


def make_backup(h: Host) -> DeployContext:
    """The backup phase's own body on the real host: a verified BackupRecord in the context."""
    session = h.session()
    try:
        call = PhaseCall(session, lambda s, ls: None, threading.Event(), DeployContext())
        outcome = backup(call)
    finally:
        session.close()
    assert outcome.status.value == "ok", outcome.summary
    assert call.context.backup is not None and call.context.backup.verified
    return call.context


def record_deploy(h: Host, **context: Any) -> Path:
    """A deploy session journal like a deploy writes one: its header and the context it established."""
    directory = h.sessions / "20200101T000000.000000Z-deploy"
    directory.mkdir(parents=True)
    journal = Journal(directory / "journal.jsonl", operator="deployer", host=h.config.target.host)
    journal.record("session_started", config=str(h.config.source), session_dir=str(directory))
    journal.record("context_updated", changes=DeployContext(**context).to_json())
    journal.record("session_ended", exit_code=0, reason="done")
    return directory


def run_rollback(
    h: Host, twice: str | None = None, plain: bool = False
) -> tuple[DeployFlow, dict[str, PhaseOutcome], list[str]]:
    """open_rollback_flow, then every phase run and confirmed as --yes would (``twice``: run it again
    before confirming it, as after a dropped link; ``plain``: through the plain front end with --yes)."""
    session = h.session()
    flow = open_rollback_flow(session, operator="tester", root=h.sessions)
    outcomes: dict[str, PhaseOutcome] = {}
    seen: list[str] = []
    try:
        if plain:
            out = io.StringIO()
            code = PlainRun(flow, Console(yes=True, stdin=io.StringIO(), stdout=out)).run()
            seen = out.getvalue().splitlines()
            assert code == 0, "\n".join(seen[-40:])
            outcomes = dict(flow.progress.outcomes)
        while (phase := flow.next_phase()) is not None:
            outcome = flow.run(phase, lambda s, lines: seen.extend(lines))
            if phase == twice:
                outcome = flow.run(phase, lambda s, lines: seen.extend(lines))
            outcomes[phase] = outcome
            assert outcome.status in ACCEPTABLE, f"{phase}: {outcome.summary}\n{seen[-30:]}"
            assert flow.confirm(phase, True, unattended=True).accepted
        assert flow.exit_code() == 0
        flow.close(0, "the test ended")
    finally:
        flow.close(1, "the test ended")
        session.close()
    assert flow.session_dir is not None
    written = [p.read_text() for p in flow.session_dir.rglob("*") if p.is_file()]
    for secret in (session.db_password(), *h.environ.values()):
        assert not any(secret in line for line in seen)
        assert not any(secret in text for text in written)
    return flow, outcomes, seen


def test_a_completed_deploy_is_rolled_back_by_an_explicit_downgrade(host: Host) -> None:
    h = host
    before, checksum_before = h.git("rev-parse", "HEAD"), h.checksum()
    ctx = make_backup(h)
    h.git("merge", "--ff-only", "origin/master")
    after = h.git("rev-parse", "HEAD")
    upgrade = subprocess.run(
        [sys.executable, "-m", "todobox_deploy", "exec", "--config", str(h.config.source), "--app", "--",
         "flask", "db", "upgrade"],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120,
    )  # fmt: skip
    assert upgrade.returncode == 0, upgrade.stderr
    h.restart_app()
    assert h.revision() == [FIX_REVISION] and "api_token" in h.columns()
    deploy = record_deploy(
        h, commit_before=before, commit_after=after, db_revision_before=BUG_REVISION,
        db_revision_after=FIX_REVISION, checksum_before=f"user={checksum_before}", backup=ctx.backup,
    )  # fmt: skip

    flow, outcomes, lines = run_rollback(h, twice="rollback_db")

    probe = outcomes["rollback_probe"]
    assert (
        probe.fact(
            "database action",
        )
        is not None
    )
    assert str(probe.fact("database action")).startswith(f"DOWNGRADE {BUG_REVISION}")
    assert str(probe.fact("code action")).startswith("RESET")
    assert outcomes["rollback_preview"].status.value == "skipped"
    assert any("was started before: re-attaching, it is never run twice" in ln for ln in lines)
    assert (
        sum("Running downgrade d1f2e3c4b5a6 -> c682ef478e45" in ln for ln in lines) == 2
    )  # one log, read twice
    assert h.revision() == [BUG_REVISION]
    assert h.git("rev-parse", "HEAD") == before
    assert app_status(str(h.config.app.health_url), timeout=2) == 200
    # d1f2e3c4b5a6's downgrade is a no-op: the column and its index stay, all NULL. On MariaDB 10.11 a
    # trailing all-NULL column leaves CHECKSUM TABLE unchanged, so it equals the one before the deploy
    assert "api_token" in h.columns()
    assert h.checksum() == checksum_before
    verify = outcomes["rollback_verify"]
    assert verify.status.value == "ok", verify.summary
    assert "equal to the pre-flight" in str(verify.fact("CHECKSUM TABLE user"))
    header = read_events(flow.journal_path or Path())[0]
    assert header["kind"] == "rollback" and header["deploy_session"] == str(deploy)
    # a second rollback finds nothing left to undo on the database or the code
    _, again, _ = run_rollback(h)
    assert str(again["rollback_probe"].fact("database action")).startswith("NONE")
    assert str(again["rollback_probe"].fact("code action")).startswith("NONE")
    assert again["rollback_stop"].status.value == again["rollback_start"].status.value == "skipped"
    assert h.revision() == [BUG_REVISION] and h.checksum() == checksum_before


@pytest.mark.parametrize("host", [True, False], ids=["scratch-restore", "dump-counts"], indirect=True)
def test_a_half_applied_database_is_restored_after_showing_the_loss(host: Host) -> None:
    h = host
    scratch = h.config.database.admin_user is not None
    before, checksum_before = h.git("rev-parse", "HEAD"), h.checksum()
    ctx = make_backup(h)
    h.git("merge", "--ff-only", "origin/master")
    after = h.git("rev-parse", "HEAD")
    # the migration died half-way: the column is there, the index and the stamp are not
    h.sql("ALTER TABLE `user` ADD COLUMN `api_token` VARCHAR(64) NULL")
    # writes after the backup, which a restore throws away
    h.sql("INSERT INTO `user` (username, email) VALUES ('after-backup', 'after@example.com')")
    h.sql("UPDATE `user` SET email = 'changed@example.com' WHERE id = 1")
    h.sql("UPDATE `user` SET api_token = 'tok' WHERE id = 2")
    assert h.revision() == [BUG_REVISION] and h.checksum() != checksum_before
    record_deploy(
        h, commit_before=before, commit_after=after, db_revision_before=BUG_REVISION,
        checksum_before=f"user={checksum_before}", backup=ctx.backup,
    )  # fmt: skip

    _, outcomes, _ = run_rollback(h, plain=not scratch)

    assert ctx.backup is not None
    assert str(outcomes["rollback_probe"].fact("database action")).startswith(f"RESTORE {ctx.backup.path}")
    preview = outcomes["rollback_preview"]
    assert preview.status.value == "warning" and "would throw away writes" in preview.summary
    user = str(preview.fact("user"))
    assert user.startswith("2001 rows now, 2000 in the backup")
    if scratch:
        assert "scratch restore" in str(preview.fact("method"))
        assert "1 inserted, 0 deleted, 1 changed" in user and "1 rows have a value in api_token" in user
        assert "0 inserted, 0 deleted, 0 changed" in str(preview.fact("alembic_version"))
    else:  # the app's account may not create a scratch schema: counts only, and it says so
        assert "updated rows cannot be seen" in str(preview.fact("method")) and "counts only" in user
    assert h.revision() == [BUG_REVISION]
    assert "api_token" not in h.columns()
    assert h.git("rev-parse", "HEAD") == before
    assert app_status(str(h.config.app.health_url), timeout=2) == 200
    assert h.checksum() == checksum_before
    verify = outcomes["rollback_verify"]
    assert verify.status.value == "ok", verify.summary
    backup_sum = "equal to the backup's" if scratch else "equal to the pre-flight's"
    assert backup_sum in str(verify.fact("CHECKSUM TABLE user"))
    left = h.sql(
        "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'todobox_rollback%%'"
    )
    assert left == []


def test_no_deploy_session_means_no_rollback(host: Host) -> None:
    session = host.session()
    try:
        with pytest.raises(NoDeploySession):
            open_rollback_flow(session, operator="tester", root=host.sessions)
    finally:
        session.close()
    assert not host.sessions.exists() or not any(host.sessions.iterdir())


def test_the_database_action_refuses_when_the_database_moved_after_the_probe(host: Host) -> None:
    h = host
    before = h.git("rev-parse", "HEAD")
    sandbox_restore(h.info.directory, "fixed")  # a completed deploy: fix commit, d1f2e3c4b5a6, column + index
    record_deploy(h, commit_before=before, db_revision_before=BUG_REVISION)
    session = h.session()
    flow = open_rollback_flow(session, operator="tester", root=h.sessions)
    try:
        for phase in ("rollback_probe", "rollback_stop", "rollback_preview"):
            outcome = flow.run(phase, lambda s, ls: None)
            assert outcome.status in ACCEPTABLE, outcome.summary
            flow.confirm(phase, True)
        h.sql("UPDATE alembic_version SET version_num = '3e5106ee570c'")  # someone else moved it
        outcome = flow.run("rollback_db", lambda s, ls: None)
        assert outcome.status.value == "failed" and "changed since the probe" in outcome.summary
        token = dict(flow.context.rollback_plan or ())["token"]
        assert session.connection.run_state(f"rollback-downgrade-{token}")[0] == "absent"
        assert h.revision() == ["3e5106ee570c"]
    finally:
        flow.close(1, "the test ended")
        session.close()
