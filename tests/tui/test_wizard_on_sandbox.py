"""The wizard end to end on the real sandbox: Pilot drives it, the real engine runs every phase before
step 5 over SSH (backup, pre-flight, rehearsal on a copy, notify, steps 1-4) and step 4's evidence is
read from the log pane."""

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
from todobox_deploy.tui.screens.ask import AskScreen
from todobox_deploy.tui.screens.confirm import ConfirmPhase
from todobox_deploy.tui.screens.wizard import WizardScreen

from .conftest import wait_for
from .test_wizard import SIZE, through_gates, wizard

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

BEFORE_DB_CHECK = {  # what each phase before step 4 ends with on the sandbox in its bug state
    "backup": PhaseStatus.OK,
    "preflight": PhaseStatus.WARNING,  # the sandbox user lacks PROCESS: blockers cannot be checked
    "rehearsal": PhaseStatus.OK,
    "notify": PhaseStatus.SKIPPED,  # no [notify] channel configured: the operator notifies by hand
    "stop_app": PhaseStatus.OK,
    "deploy_code": PhaseStatus.OK,
    "verify_files": PhaseStatus.OK,
}


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
            for phase, expected in BEFORE_DB_CHECK.items():  # each one on the host, in the checklist's order
                assert app.progress.next_phase() == phase
                await pilot.press("g")
                if phase == "stop_app":  # the rehearsal saw an additive migration: online is offered
                    await wait_for(pilot, lambda: isinstance(app.screen, AskScreen))
                    await pilot.press("n")  # the checklist's order: stop, migrate, start
                await through_gates(pilot, app, timeout=60)  # stop_app: its name typed first
                assert app.progress.status[phase] is expected, app.progress.outcomes[phase].summary
                await pilot.press("y")
                await wait_for(pilot, lambda: isinstance(app.screen, WizardScreen))
            assert "stamped but not applied" in app.progress.outcomes["preflight"].summary  # the bug state
            await pilot.press("g")  # 4. Check Database Before Migration
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmPhase), timeout=60)
            pane = wizard(app).log_pane
            await wait_for(pilot, lambda: pane.pending_count == 0)
            window = pane.window("db_check")
            text = "\n".join(window)
            assert "c682ef478e45" in text  # SELECT * FROM alembic_version
            # the history, read from the work tree's migration files
            assert "c682ef478e45 -> d1f2e3c4b5a6 (head)" in text
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
        *((phase, status.value) for phase, status in BEFORE_DB_CHECK.items()),
        ("db_check", "ok"),
    ]
    assert not [e for e in events if e["event"] == "phase_by_hand"]  # the engine ran every one of them
    assert [e["event"] for e in events if e["event"].startswith("online_migration_")] == [
        "online_migration_declined"
    ]
    assert flow.context.migration_additive is True and flow.context.online_migration is False
    assert all(e["operator"] == "erin" for e in events)
    changes = [e["changes"] for e in events if e["event"] == "context_updated"]
    for field in ("backup", "commit_target", "rehearsal_seconds", "app_down_at", "commit_after"):
        assert any(field in c for c in changes), field
    backup = flow.context.backup
    assert backup is not None and backup.verified and backup.size > 0
    assert flow.context.commit_after == flow.context.commit_target  # step 2 deployed what pre-flight fetched
    assert flow.context.commit_after is not None and flow.context.commit_after != flow.context.commit_before
    assert [e["event"] for e in events][-1] == "session_ended"
    assert (tmp_path / "transcripts" / "db_check.log").read_text().count("c682ef478e45") >= 2
