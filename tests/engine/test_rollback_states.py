"""``rollback --plain --yes`` after a deploy from each sandbox state: the database back at the revision the
deploy started from, the code at the commit it started from, the app serving, and ``CHECKSUM TABLE user``
as before the deploy (no rows are written by a deploy or a rollback).

The deploy and the rollback run in-process through the CLI's own ``run_deploy`` with the plain front end
and ``--yes`` (the same connection, session, lock and flow as ``todobox-deploy run/rollback --plain --yes``,
without a Python start-up per run).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from run_helpers import app_status, events, health_url, journal_in, private_config

from todobox_deploy.cli import run_deploy
from todobox_deploy.config import ExpectedSchema, load_config
from todobox_deploy.core import exits
from todobox_deploy.engine import rollback as rb
from todobox_deploy.journal.verify import verify_journal
from todobox_deploy.plain import Console
from todobox_deploy.sandbox.appdb import BUG_REVISION, FIX_REVISION
from todobox_deploy.sandbox.gitrepo import git
from todobox_deploy.sandbox.manager import SandboxInfo
from todobox_deploy.sandbox.mariadb import ThrowawayMariaDB

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


@dataclass(frozen=True)
class Seen:
    """The host as the test reads it, not through the tool."""

    revision: list[str]
    checksum: str
    head: str
    health: int | None


def _seen(info: SandboxInfo) -> Seen:
    conn = ThrowawayMariaDB(info.directory / "db").admin_connect(info.db_name)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT version_num FROM alembic_version")
            revision = [str(r[0]) for r in cur.fetchall()]
            cur.execute("CHECKSUM TABLE `user`")
            checksum = str(cur.fetchone()[1])
    finally:
        conn.close()
    health = app_status(health_url(info.config))
    return Seen(revision, checksum, git("rev-parse", "HEAD", cwd=info.app_dir), health)


def _run(config: Path, *, rollback: bool) -> tuple[int, str]:
    """``run`` or ``rollback`` with ``--plain --yes``: (exit code, what it printed)."""
    out = io.StringIO()
    code = run_deploy(
        load_config(config),
        operator="robot",
        plain=True,
        yes=True,
        console=Console(yes=True, stdin=io.StringIO(), stdout=out),
        rollback=rollback,
    )
    return code, out.getvalue()


def test_a_deploy_that_found_the_head_already_is_not_downgraded_below_it() -> None:
    """Pure: the deploy journaled the head as its revision before (it migrated nothing); the configured
    previous revision is older, but going there would undo something this deploy never did."""
    expect = (ExpectedSchema("user", "api_token", "varchar(64)", "ix_user_api_token", True),)
    columns = {"user": {"id": "int(11)", "api_token": "varchar(64)"}}
    items = rb.item_states(columns, {"user": {"ix_user_api_token": (("api_token",), True)}}, expect)
    found = rb.Found((FIX_REVISION,), items, "c" * 40, False, True)
    for before, db in ((FIX_REVISION, "none"), (BUG_REVISION, "downgrade")):
        deploy = rb.DeployFacts("c" * 40, "c" * 40, before, "user=1", rb.BackupFacts(None))
        plan = rb.decide(found, deploy, expected_head=FIX_REVISION, configured_previous=BUG_REVISION)
        assert plan.db == db, plan
        assert plan.code == "none" and not plan.refused
    assert plan.db_target == BUG_REVISION  # the deploy that did migrate still goes back
    deploy = rb.DeployFacts("c" * 40, "c" * 40, FIX_REVISION, "user=1", rb.BackupFacts(None))
    plan = rb.decide(found, deploy, expected_head=FIX_REVISION, configured_previous=BUG_REVISION)
    assert plan.expected_revision == FIX_REVISION and plan.notes == ()
    assert "migrated nothing" in plan.db_reason


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Session folders and host-key pins under this test's tmp dir (as ``XDG_*`` for a CLI process)."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    return tmp_path


def test_nothing_deployed_means_nothing_to_roll_back(
    sandbox_reset: SandboxInfo, isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    info = sandbox_reset
    config = private_config(info.config, isolated)
    before = _seen(info)
    code, out = _run(config, rollback=True)
    err = capsys.readouterr().err
    assert code == exits.USAGE, out + err
    assert "no deploy session for 127.0.0.1" in err and "recorded a commit, revision or backup" in err
    assert _seen(info) == before
    assert not (isolated / "runs" / "deploy.lock").exists()  # it never took the host's lock


# state -> (the deploy's exit code, the revision and commit ("prefix"/"fix") the deploy starts from, the
# rollback's database action)
STATES: dict[str, tuple[int, str, str, str]] = {
    "fixed": (exits.OK, FIX_REVISION, "fix", "NONE"),  # the deploy found everything done
    "column-no-index": (exits.OK, BUG_REVISION, "prefix", f"DOWNGRADE {BUG_REVISION}"),
    "half-applied": (exits.OK, BUG_REVISION, "prefix", f"DOWNGRADE {BUG_REVISION}"),
    "import-queries-user": (exits.OK, BUG_REVISION, "prefix", f"DOWNGRADE {BUG_REVISION}"),
    "renamed-wsgi": (exits.PHASE_FAILED, BUG_REVISION, "prefix", "NONE"),  # refused before the stop
}


@pytest.mark.parametrize("state", list(STATES))
def test_rollback_after_a_deploy_puts_the_state_back(
    sandbox_state: Callable[[str], SandboxInfo], isolated: Path, state: str
) -> None:
    deploy_code, revision, commit, db_action = STATES[state]
    info = sandbox_state(state)
    config = private_config(info.config, isolated)
    before = _seen(info)
    assert before.revision == [revision]
    origin = info.directory / "git" / "todobox.git"
    assert before.head == git("rev-parse", f"refs/sandbox/{_line(info)}/{commit}", cwd=origin)

    code, out = _run(config, rollback=False)
    assert code == deploy_code, out[-4000:]
    deploy = journal_in(out)
    code, out = _run(config, rollback=True)
    assert code == exits.OK, out[-4000:]
    assert "rollback complete" in out
    rolled = journal_in(out)

    after = _seen(info)
    assert after.revision == before.revision, out[-3000:]
    assert after.head == before.head, out[-3000:]
    assert after.checksum == before.checksum, out[-3000:]  # a no-op downgrade keeps the all-NULL column
    assert after.health == 200, out[-3000:]
    (header,) = events(rolled, "session_started")
    assert header["kind"] == "rollback" and header["deploy_session"] == str(deploy.parent)
    probe = _finished(rolled, "rollback_probe")
    assert probe["facts"]["database action"].startswith(db_action), probe
    if db_action == "NONE":  # the deploy changed nothing: the rollback stops nothing
        assert _finished(rolled, "rollback_stop")["status"] == "skipped"
    verify = _finished(rolled, "rollback_verify")
    assert verify["status"] == "ok", verify
    assert verify_journal(deploy).ok and verify_journal(rolled).ok


def _line(info: SandboxInfo) -> str:
    """The code line (``gitrepo.CODE_LINES``) whose commits the sandbox's state uses."""
    from todobox_deploy.sandbox.states import state_named

    return state_named(info.state).line


def _finished(journal: Path, phase: str) -> dict[str, Any]:
    (entry,) = events(journal, "phase_finished", phase=phase)
    return entry
