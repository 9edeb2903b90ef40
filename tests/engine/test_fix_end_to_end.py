"""The checklist's path on the real sandbox, with step 5 done by hand: the bug is gone at the end."""

from __future__ import annotations

import subprocess
import sys

import pytest

from todobox_deploy.config import load_config
from todobox_deploy.core.outcome import PhaseStatus
from todobox_deploy.sandbox.manager import SandboxInfo

from .conftest import RunPhase

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def test_steps_1_to_7_fix_the_unknown_column(sandbox_reset: SandboxInfo, run_phase: RunPhase) -> None:
    config = load_config(sandbox_reset.config)
    for phase in ("stop_app", "deploy_code", "verify_files", "db_check"):
        outcome, _, _ = run_phase(phase, config)
        assert outcome.status is PhaseStatus.OK, f"{phase}: {outcome.summary}"
    upgrade = subprocess.run(
        [sys.executable, "-m", "todobox_deploy", "exec", "--config", str(sandbox_reset.config), "--app", "--",
         "flask", "db", "upgrade"],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120,
    )  # fmt: skip
    assert upgrade.returncode == 0, upgrade.stderr
    assert "Running upgrade c682ef478e45 -> d1f2e3c4b5a6" in upgrade.stderr
    checked, _, _ = run_phase("db_check", config)
    assert checked.status is PhaseStatus.OK and "already migrated" in checked.summary
    assert checked.fact("user.api_token") == "present"
    started, _, _ = run_phase("start_app", config)
    assert started.status is PhaseStatus.OK, started.summary
    assert started.fact("check") == "200"  # the user list works again
