"""Checklist step 2 on the real sandbox: fast-forward only, refusing local changes and diverged branches."""

from __future__ import annotations

from pathlib import Path

import git
import pytest

from todobox_deploy.config import load_config
from todobox_deploy.core.outcome import PhaseStatus
from todobox_deploy.sandbox.manager import SandboxInfo

from .conftest import RunPhase

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

FIX = "d1f2e3c4b5a6_fix_api_token_column_ensure_api_token.py"


def test_fast_forwards_to_the_fix_then_says_no_new_code(
    sandbox_reset: SandboxInfo, run_phase: RunPhase
) -> None:
    config = load_config(sandbox_reset.config)
    repo = git.Repo(config.app.path)
    before = repo.head.commit.hexsha
    outcome, seen, _ = run_phase("deploy_code", config)
    assert outcome.status is PhaseStatus.OK, outcome.summary
    assert outcome.fact("commit before") == before
    assert (
        outcome.fact("commit after")
        == repo.remotes.origin.refs.master.commit.hexsha
        == repo.head.commit.hexsha
    )
    assert outcome.fact("new migration files") == FIX
    assert (Path(config.app.path) / "migrations" / "versions" / FIX).exists()
    assert any(FIX in line for _, line in seen)  # git diff --stat streamed
    again, _, _ = run_phase("deploy_code", config)
    assert again.status is PhaseStatus.OK and "no new code" in again.summary


def test_local_changes_are_refused_and_nothing_moves(sandbox_reset: SandboxInfo, run_phase: RunPhase) -> None:
    config = load_config(sandbox_reset.config)
    repo = git.Repo(config.app.path)
    before = repo.head.commit.hexsha
    wsgi = Path(config.app.path) / "wsgi.py"
    wsgi.write_text(wsgi.read_text() + "# hotfix made on the server\n")
    outcome, seen, _ = run_phase("deploy_code", config)
    assert outcome.status is PhaseStatus.FAILED
    assert "local changes" in outcome.summary
    assert ("stderr", " M wsgi.py") in seen
    assert repo.head.commit.hexsha == before


def test_diverged_branch_is_refused_and_nothing_moves(
    sandbox_reset: SandboxInfo, run_phase: RunPhase
) -> None:
    config = load_config(sandbox_reset.config)
    repo = git.Repo(config.app.path)
    (Path(config.app.path) / "NOTES.md").write_text("a commit made only on the server\n")
    repo.index.add(["NOTES.md"])
    local = repo.index.commit("server-only commit").hexsha
    outcome, _, _ = run_phase("deploy_code", config)
    assert outcome.status is PhaseStatus.FAILED
    assert "cannot be fast-forwarded" in outcome.summary
    assert repo.head.commit.hexsha == local
