"""The wizard end to end on the real sandbox: Pilot drives it, the real engine runs step 4 over SSH."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from todobox_deploy.checklist import CHECKLIST
from todobox_deploy.config import load_config
from todobox_deploy.core.outcome import PhaseStatus
from todobox_deploy.engine.flow import DeployFlow
from todobox_deploy.engine.phases import PHASES
from todobox_deploy.engine.session import DeploySession
from todobox_deploy.journal.journal import Journal
from todobox_deploy.remote.connection import SshConnection
from todobox_deploy.sandbox.manager import SandboxInfo
from todobox_deploy.tui.app import make_app
from todobox_deploy.tui.screens.confirm import ConfirmPhase
from todobox_deploy.tui.screens.wizard import WizardScreen

from .test_wizard import SIZE, wait_for, wizard

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


async def test_db_check_streams_real_evidence_into_the_log_pane(
    sandbox_reset: SandboxInfo, tmp_path: Path
) -> None:
    config = load_config(sandbox_reset.config)
    conn = SshConnection(config.target, pinned_known_hosts=tmp_path / "pins")
    session = DeploySession(config, connection=conn)
    journal = Journal(tmp_path / "journal.jsonl", operator="erin", host=config.target.host)
    flow = DeployFlow(
        CHECKLIST,
        PHASES,
        session=session,
        operator="erin",
        host=config.target.host,
        journal=journal,
        transcript_dir=tmp_path / "transcripts",
    )
    app = make_app(flow)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("g")  # backup: not automated yet, done by hand and confirmed
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmPhase))
            await pilot.press("y")
            await wait_for(pilot, lambda: isinstance(app.screen, WizardScreen))
            for phase in ("stop_app", "deploy_code"):  # 1. and 2., on the host
                await pilot.press("g")
                await wait_for(pilot, lambda: isinstance(app.screen, ConfirmPhase), timeout=60)
                assert app.progress.status[phase] is PhaseStatus.OK, app.progress.outcomes[phase].summary
                await pilot.press("y")
                await wait_for(pilot, lambda: isinstance(app.screen, WizardScreen))
            await pilot.press("g")  # 3. Verify Migration Files, on the host
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmPhase), timeout=60)
            assert app.progress.status["verify_files"] is PhaseStatus.OK
            await pilot.press("y")
            await wait_for(pilot, lambda: isinstance(app.screen, WizardScreen))
            await pilot.press("g")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmPhase), timeout=60)
            pane = wizard(app).log_pane
            await wait_for(pilot, lambda: pane.pending_count == 0)
            window = pane.window("db_check")
            text = "\n".join(window)
            assert "c682ef478e45" in text  # SELECT * FROM alembic_version
            assert "c682ef478e45 -> d1f2e3c4b5a6 (head)" in text  # flask db history on the host
            assert any("password_hash" in line and "varchar(255)" in line for line in window)  # DESCRIBE user
            assert app.progress.status["db_check"] is PhaseStatus.OK  # the check ran: upgrade needed
            assert "user.api_token MISSING" in app.progress.outcomes["db_check"].summary
            await pilot.press("y")
            await wait_for(pilot, lambda: isinstance(app.screen, WizardScreen))
    finally:
        flow.close(3, "the test ended before step 5")
        session.close()
    events: list[dict[str, Any]] = journal.read()
    confirmed = [(e["phase"], e["status"]) for e in events if e["event"] == "phase_confirmed"]
    assert confirmed == [
        ("backup", "skipped"),
        ("stop_app", "ok"),
        ("deploy_code", "ok"),
        ("verify_files", "ok"),
        ("db_check", "ok"),
    ]
    assert all(e["operator"] == "erin" for e in events)
    changes = [e["changes"] for e in events if e["event"] == "context_updated"]
    assert any("app_down_at" in c for c in changes) and any("commit_after" in c for c in changes)
    assert flow.context.commit_after is not None and flow.context.commit_after != flow.context.commit_before
    assert [e["event"] for e in events][-1] == "session_ended"
    assert (tmp_path / "transcripts" / "db_check.log").read_text().count("c682ef478e45") >= 2
