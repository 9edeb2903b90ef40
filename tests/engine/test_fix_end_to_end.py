"""The whole checklist on the real sandbox, through a DeployFlow over the real registry: every phase run by
the engine and confirmed, from the backup to the post-deployment tests. The bug is gone at the end."""

from __future__ import annotations

import dataclasses
import json
import shlex
from pathlib import Path

import git
import pymysql
import pytest

from todobox_deploy.checklist import CHECKLIST
from todobox_deploy.config import DeployConfig, load_config
from todobox_deploy.core.envfile import password_in_env_text
from todobox_deploy.core.outcome import PhaseOutcome, PhaseStatus
from todobox_deploy.core.streams import OutputSink
from todobox_deploy.engine.launch import open_flow
from todobox_deploy.engine.phases import PHASES
from todobox_deploy.engine.session import DeploySession
from todobox_deploy.remote.connection import SshConnection
from todobox_deploy.sandbox.http import http_status
from todobox_deploy.sandbox.manager import SandboxInfo

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

BUG, HEAD = "c682ef478e45", "d1f2e3c4b5a6"
REPAIR = (("stamp", "366e5694a9ad"), ("upgrade", HEAD))  # the bug: stamped past the api_token it lacks
FIX = "d1f2e3c4b5a6_fix_api_token_column_ensure_api_token.py"
# What each phase comes to on the sandbox. The pre-flight may warn (the app user has no PROCESS
# privilege, so it cannot look for metadata-lock blockers); every other phase must be plainly OK.
EXPECTED = dict.fromkeys(CHECKLIST.phases(), {PhaseStatus.OK})
EXPECTED["preflight"] = {PhaseStatus.OK, PhaseStatus.WARNING}


def _private(config: DeployConfig, tmp_path: Path) -> DeployConfig:
    """The sandbox's config with this test's own run root (lock, detached runs), backup folder and a
    notify command that writes the message to a file."""
    notify = ("sh", "-c", f"cat > {shlex.quote(str(tmp_path / 'notified.txt'))}")
    return dataclasses.replace(
        config,
        target=dataclasses.replace(config.target, run_root=str(tmp_path / "runs")),
        backup=dataclasses.replace(config.backup, directory=str(tmp_path / "backups")),
        notify=dataclasses.replace(config.notify, command=notify),
    )


def collect(into: list[str]) -> OutputSink:
    return lambda stream, lines: into.extend(lines)


def _scratch_schemas(info: SandboxInfo) -> list[str]:
    with pymysql.connect(unix_socket=str(info.db_socket), user="root") as conn, conn.cursor() as cur:
        cur.execute("SHOW DATABASES LIKE 'todobox\\_rehearsal\\_%'")
        return [str(r[0]) for r in cur.fetchall()]


def test_every_phase_run_and_confirmed_fixes_the_unknown_column(
    sandbox_reset: SandboxInfo, tmp_path: Path
) -> None:
    config = _private(load_config(sandbox_reset.config), tmp_path)
    assert config.app.check_url is not None
    assert http_status(config.app.check_url) == 500  # the production bug
    password = password_in_env_text(Path(config.app.env_file or "").read_text(), "DATABASE_URL")
    assert password
    repo = git.Repo(config.app.path)
    before = repo.head.commit.hexsha
    session = DeploySession(
        config,
        connection_factory=lambda: SshConnection(config.target, pinned_known_hosts=tmp_path / "pins"),
        environ={},
    )
    flow = open_flow(session, operator="tester", root=tmp_path / "sessions")
    outcomes: dict[str, PhaseOutcome] = {}
    seen: dict[str, list[str]] = {}
    try:
        assert flow.phases is PHASES and all(flow.can_run(p) for p in flow.order)
        while (phase := flow.next_phase()) is not None:
            lines = seen.setdefault(phase, [])
            outcome = flow.run(phase, collect(lines))
            outcomes[phase] = outcome
            assert outcome.status in EXPECTED[phase], "\n".join([f"{phase}: {outcome.summary}", *lines[-30:]])
            assert flow.confirm(phase, True).accepted
        assert flow.all_confirmed
    finally:
        flow.close(0, "the test ended")
        session.close()

    # every phase of the checklist ran in the engine, in order, and was confirmed by a person
    assert list(outcomes) == list(CHECKLIST.phases())
    assert flow.journal_path is not None
    events = [json.loads(line) for line in flow.journal_path.read_text().splitlines()]

    def phases_of(event: str) -> list[str]:
        return [e["phase"] for e in events if e["event"] == event]

    assert phases_of("phase_by_hand") == phases_of("phase_refused") == []
    assert (
        phases_of("phase_started")
        == phases_of("phase_finished")
        == phases_of("phase_confirmed")
        == list(outcomes)
    )
    assert all(not e["unattended"] and not e["by_hand"] for e in events if e["event"] == "phase_confirmed")

    ctx = flow.context
    target = repo.remotes.origin.refs.master.commit.hexsha
    # before the stop: a verified backup, the fix fetched and classified, rehearsed on a dropped copy
    assert ctx.backup is not None and ctx.backup.verified and Path(ctx.backup.path).is_file()
    assert ctx.commit_before == before and ctx.commit_target == target != before
    assert ctx.migration_plan == REPAIR and ctx.migration_additive is True
    assert outcomes["rehearsal"].fact("resulting schema") == "as expected"
    assert "scratch schema dropped" in outcomes["rehearsal"].summary and _scratch_schemas(sandbox_reset) == []
    assert target[:12] in (tmp_path / "notified.txt").read_text()
    # the downtime: stopped, fast-forwarded to the fetched commit, checked, migrated once, verified, started
    assert (outcomes["stop_app"].fact("health") or "").startswith("down (observed: ")
    assert outcomes["deploy_code"].fact("new migration files") == FIX
    assert ctx.commit_after == repo.head.commit.hexsha == target
    assert outcomes["verify_files"].fact("heads") == HEAD
    assert outcomes["db_check"].fact("alembic_version") == BUG
    assert f"upgrade to {HEAD} needed" in outcomes["db_check"].summary
    assert outcomes["migrate"].fact("revision") == f"{BUG} -> {HEAD}" and ctx.migration_run is not None
    assert ctx.db_revision_before == BUG and ctx.db_revision_after == HEAD
    assert outcomes["verify_migration"].fact("index ix_user_api_token") == "unique on (api_token)"
    assert outcomes["start_app"].fact("check") == "200"
    assert ctx.app_down_at is not None and ctx.app_up_at is not None and ctx.app_down_at < ctx.app_up_at
    assert "migration completed: met" in outcomes["post_verify"].summary
    assert http_status(config.app.check_url) == 200  # the user list works again, seen from here too

    # the password never reached the operator's screen, the journal or a transcript
    assert all(password not in line for out in seen.values() for line in out)
    assert flow.session_dir is not None
    assert all(password not in p.read_text() for p in flow.session_dir.rglob("*") if p.is_file())
