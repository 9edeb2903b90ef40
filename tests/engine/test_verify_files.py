"""Checklist step 3 on the real sandbox: the migration file and a single Alembic head, or a clear failure."""

from __future__ import annotations

import pytest

from todobox_deploy.config import load_config
from todobox_deploy.core.outcome import PhaseStatus
from todobox_deploy.sandbox.manager import SandboxInfo

from .conftest import RunPhase

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

STRAY = '''"""a stray branch"""
revision = "feedfacecafe"
down_revision = "c682ef478e45"
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
'''


def test_before_the_code_deploy_the_migration_is_missing(
    sandbox_reset: SandboxInfo, run_phase: RunPhase
) -> None:
    outcome, seen, _ = run_phase("verify_files", load_config(sandbox_reset.config))
    assert outcome.status is PhaseStatus.FAILED
    assert "d1f2e3c4b5a6_fix_api_token_column_ensure_api_token.py is missing" in outcome.summary
    assert outcome.fact("heads") == "c682ef478e45"
    text = "\n".join(line for _, line in seen)
    assert "c682ef478e45_add_api_token_field_to_user_model.py" in text  # ls -la streamed


def test_after_the_code_deploy_files_and_head_are_right(
    sandbox_reset: SandboxInfo, run_phase: RunPhase
) -> None:
    import git

    config = load_config(sandbox_reset.config)
    git.Repo(config.app.path).remotes.origin.pull("master")
    outcome, _, _ = run_phase("verify_files", config)
    assert outcome.status is PhaseStatus.OK, outcome.summary
    assert outcome.fact("migration file") == "present"
    assert outcome.fact("heads") == "d1f2e3c4b5a6"


def test_multiple_heads_are_refused(sandbox_reset: SandboxInfo, run_phase: RunPhase) -> None:
    from pathlib import Path

    import git

    config = load_config(sandbox_reset.config)
    git.Repo(config.app.path).remotes.origin.pull("master")
    stray = Path(config.app.path) / "migrations" / "versions" / "feedfacecafe_stray.py"
    stray.write_text(STRAY)
    outcome, _, _ = run_phase("verify_files", config)
    assert outcome.status is PhaseStatus.FAILED
    assert "multiple heads" in outcome.summary
    assert "d1f2e3c4b5a6" in outcome.summary and "feedfacecafe" in outcome.summary


def test_steps_3_and_4_never_import_the_app(sandbox_reset: SandboxInfo, run_phase: RunPhase) -> None:
    """The graph comes from the migration files, so an app that cannot even import (as one that queries
    a drifted schema at start-up cannot) does not blind the checks before the migration."""
    from pathlib import Path

    import git

    config = load_config(sandbox_reset.config)
    git.Repo(config.app.path).remotes.origin.pull("master")
    init = Path(config.app.path) / "app" / "__init__.py"
    original = init.read_text()
    init.write_text('raise RuntimeError("the app cannot import")\n' + original)
    try:
        files, _, _ = run_phase("verify_files", config)
        checked, seen, _ = run_phase("db_check", config)
    finally:
        init.write_text(original)
    assert files.status is PhaseStatus.OK, files.summary
    assert files.fact("heads") == "d1f2e3c4b5a6"
    assert checked.status is PhaseStatus.OK, checked.summary
    assert checked.fact("history heads") == "d1f2e3c4b5a6"
    assert not any("the app cannot import" in line for _, line in seen)
