"""Resume decisions, pure: what carries over and where a crashed session resumes, against scripted states."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from todobox_deploy.checklist.data import CHECKLIST
from todobox_deploy.core.context import DeployContext
from todobox_deploy.engine.phases import PHASES
from todobox_deploy.engine.resume import (
    HostState,
    ResumePlan,
    find_unfinished,
    plan_resume,
    read_journal_state,
)

ORDER = CHECKLIST.phases()
CHANGING = [p.id for p in PHASES.values() if p.changes_host]
BEFORE_STOP = ORDER[: ORDER.index("stop_app")]  # backup, pre-flight, rehearsal, notify
HEAD = "d1f2e3c4b5a6"
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC).isoformat()


def _confirmed(phase: str, by_hand: bool = False) -> list[dict[str, Any]]:
    return [
        {"event": "phase_started", "phase": phase},
        {"event": "phase_finished", "phase": phase, "status": "ok", "summary": f"{phase} done", "facts": {}},
        {"event": "phase_confirmed", "phase": phase, "ts": NOW, "operator": "alice", "by_hand": by_hand},
    ]


def _journal(*phases: str, extra: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = [
        {"event": "session_started", "host": "h", "operator": "alice", "ts": NOW}
    ]
    entries += [
        {"event": "phase_by_hand", "phase": "backup"},
        {"event": "phase_confirmed", "phase": "backup", "ts": NOW, "operator": "alice", "by_hand": True},
    ]
    for phase in BEFORE_STOP[1:]:
        entries += _confirmed(phase)
    for phase in phases:
        entries += _confirmed(phase)
        if phase == "deploy_code":
            entries.append(
                {"event": "context_updated", "changes": {"commit_before": "a" * 40, "commit_after": "b" * 40}}
            )
    return entries + (extra or [])


def _plan(entries: list[dict[str, Any]], host: HostState) -> ResumePlan:
    state = read_journal_state(Path("j"), entries)
    return plan_resume(state, host, ORDER, CHANGING, HEAD)


def test_crash_at_the_gate_after_stop_confirms_the_host_evidence_instead_of_stopping_again() -> None:
    finished = {"event": "phase_finished", "phase": "stop_app", "status": "ok", "summary": "s"}
    entries = _journal(extra=[{"event": "phase_started", "phase": "stop_app"}, finished])
    plan = _plan(
        entries, HostState(app_up=False, head="a" * 40, upstream="b" * 40, db_revision="c682ef478e45")
    )
    assert plan.carried == BEFORE_STOP
    assert plan.resume_at == "stop_app"
    assert plan.done_on_host is not None and "not run again" in plan.done_on_host.summary
    assert any("DOWN" in w for w in plan.warnings)


def test_app_still_up_means_stop_runs_again() -> None:
    plan = _plan(_journal(), HostState(app_up=True, head="a" * 40, upstream="b" * 40, db_revision="x"))
    assert plan.resume_at == "stop_app" and plan.done_on_host is None


def test_journal_contradicted_by_the_host_resumes_at_the_contradicted_phase() -> None:
    # the journal says the app was stopped and the code deployed, but the app answers: never trust it
    plan = _plan(_journal("stop_app", "deploy_code"), HostState(True, "b" * 40, "b" * 40, "c682ef478e45"))
    assert plan.resume_at == "stop_app"
    assert plan.carried == BEFORE_STOP
    assert any("stop_app" in w and "does not show" in w for w in plan.warnings)


def test_everything_proven_carries_over_and_resumes_at_the_first_unconfirmed() -> None:
    host = HostState(app_up=False, head="b" * 40, upstream="b" * 40, db_revision="c682ef478e45")
    plan = _plan(_journal("stop_app", "deploy_code", "verify_files"), host)
    assert plan.carried == (*BEFORE_STOP, "stop_app", "deploy_code", "verify_files")
    assert plan.resume_at == "db_check" and plan.done_on_host is None


def test_cannot_verify_is_never_proof() -> None:
    plan = _plan(_journal("stop_app"), HostState(app_up=None, head=None, upstream=None, db_revision=None))
    assert plan.resume_at == "stop_app" and plan.done_on_host is None
    assert any("cannot verify" in w for w in plan.warnings)


def test_a_phase_running_at_the_crash_is_named() -> None:
    entries = _journal("stop_app", extra=[{"event": "phase_started", "phase": "deploy_code"}])
    state = read_journal_state(Path("j"), entries)
    assert state.running == "deploy_code"
    plan = plan_resume(state, HostState(False, "a" * 40, "b" * 40, "x"), ORDER, CHANGING, HEAD)
    assert plan.resume_at == "deploy_code" and plan.done_on_host is None  # HEAD not moved: run it
    assert any("deploy_code was running" in w for w in plan.warnings)


def test_carried_confirmations_survive_a_second_crash() -> None:
    entries: list[dict[str, Any]] = [
        {"event": "session_started", "host": "h", "operator": "bob", "ts": NOW},
        {"event": "phase_carried", "phase": "backup", "status": "skipped", "summary": "by hand",
         "confirmed_by": "alice", "confirmed_at": NOW, "by_hand": True},
        {"event": "context_updated", "changes": {"app_down_at": NOW}},
    ]  # fmt: skip
    state = read_journal_state(Path("j"), entries)
    assert list(state.confirmed) == ["backup"]
    assert state.confirmed["backup"][1].operator == "alice" and state.confirmed["backup"][1].by_hand
    assert state.context == DeployContext(app_down_at=NOW)


def test_find_unfinished_picks_the_newest_session_of_this_host_and_config(tmp_path: Path) -> None:
    def session(name: str, host: str, ended: bool) -> None:
        d = tmp_path / name
        d.mkdir()
        lines = [{"event": "session_started", "host": host, "config": "/c.toml", "operator": "a", "ts": NOW}]
        if ended:
            lines.append({"event": "session_ended"})
        (d / "journal.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))

    session("20261130T100000-h", "h", ended=False)
    session("20261130T110000-other", "other", ended=False)
    found = find_unfinished(tmp_path, "h", "/c.toml")
    assert found is not None and found.path.parent.name == "20261130T100000-h"
    session("20261130T120000-h", "h", ended=True)  # a later session ended: nothing to resume
    assert find_unfinished(tmp_path, "h", "/c.toml") is None
    assert find_unfinished(tmp_path, "h", "/other.toml") is None
