"""The confirm-before-next gate and the sign-off report."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from todobox_deploy.checklist import CHECKLIST, PHASES, DeployProgress
from todobox_deploy.core.outcome import PhaseOutcome, PhaseStatus

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
OK = PhaseOutcome(PhaseStatus.OK, "fine", (("k", "v"),))


def _run(p: DeployProgress, phase: str, outcome: PhaseOutcome = OK, accept: bool = True) -> None:
    p.start(phase)
    p.finish(phase, outcome)
    p.confirm_phase(phase, "alice", NOW, accept)


def test_next_phase_refused_until_previous_confirmed() -> None:
    p = DeployProgress(CHECKLIST)
    assert p.refusal(PHASES[1]) == "confirm phase 'backup' first"
    p.start("backup")
    assert "still running" in (p.refusal("backup") or "")
    p.finish("backup", OK)
    assert p.refusal("preflight") is not None
    p.confirm_phase("backup", "alice", NOW, True)
    assert p.refusal("preflight") is None
    assert p.next_phase() == "preflight"
    assert p.refusal("stop_app") == "confirm phase 'preflight' first"  # every earlier phase, in order
    assert "already confirmed" in (p.refusal("backup") or "")


def test_failed_phase_cannot_be_confirmed_into_success() -> None:
    p = DeployProgress(CHECKLIST)
    _run(p, "backup", PhaseOutcome(PhaseStatus.FAILED, "dump failed"))
    assert not p.is_confirmed("backup")
    assert p.refusal("preflight") is not None
    assert p.refusal("backup") is None  # may be re-run
    _run(p, "backup")
    assert p.is_confirmed("backup")


def test_start_refused_raises() -> None:
    with pytest.raises(RuntimeError):
        DeployProgress(CHECKLIST).start("migrate")


def test_manual_items_toggle() -> None:
    p = DeployProgress(CHECKLIST)
    c = p.confirm_item("predeploy.read_analysis", "alice", NOW)
    assert c.accepted and "predeploy.read_analysis" in p.item_confirmations
    assert not p.confirm_item("predeploy.read_analysis", "alice", NOW).accepted
    for automated in ("deploy.migrate", "predeploy.notify_team", "predeploy.staging_test"):
        with pytest.raises(ValueError):
            p.confirm_item(automated, "alice", NOW)


def test_report_complete_after_all_phases() -> None:
    p = DeployProgress(CHECKLIST)
    for phase in PHASES:
        _run(p, phase)
    p.confirm_item("postdeploy.login", "bob", NOW)
    report = p.report("alice", "prod-1", NOW)
    assert report.complete and p.all_confirmed
    assert len(report.phases) == 12 and len(report.post_deploy) == 7 and len(report.success) == 5
    assert [i.node.id for i in report.post_deploy if i.confirmation] == ["postdeploy.login"]
    assert report.phases[0].confirmation is not None and report.phases[0].confirmation.operator == "alice"


def test_open_manual_items_before_a_phase() -> None:
    p = DeployProgress(CHECKLIST)
    assert [n.id for n in p.open_items_before("backup")] == [
        "predeploy.read_summary",
        "predeploy.read_analysis",
    ]
    p.confirm_item("predeploy.read_summary", "alice", NOW)
    assert [n.id for n in p.open_items_before("stop_app")] == ["predeploy.read_analysis"]
    p.confirm_item("predeploy.read_analysis", "alice", NOW)
    assert p.open_items_before("stop_app") == ()
