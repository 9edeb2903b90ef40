"""DeployFlow over scripted PhaseSpecs: gates, context, failures, timeouts, confirmations and close (no
servers)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from todobox_deploy.checklist.data import CHECKLIST
from todobox_deploy.core.context import BackupRecord
from todobox_deploy.core.outcome import PhaseOutcome, PhaseStatus
from todobox_deploy.core.streams import Stream
from todobox_deploy.engine.flow import DONE_BY_HAND, DeployFlow, GateRefused
from todobox_deploy.engine.phases import PHASES
from todobox_deploy.engine.phases.spec import PhaseCall, PhaseSpec

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
ORDER = CHECKLIST.phases()


class ListJournal:
    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def record(self, event: str, **fields: Any) -> dict[str, Any]:
        entry = {"event": event, **fields}
        self.entries.append(entry)
        return entry

    def events(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.entries if e["event"] == name]


class FakeLock:
    def __init__(self, error: Exception | None = None) -> None:
        self.released = 0
        self.error = error

    def release(self) -> None:
        self.released += 1
        if self.error is not None:
            raise self.error


def ok(call: PhaseCall) -> PhaseOutcome:
    call.sink("stdout", ["working"])
    return PhaseOutcome(PhaseStatus.OK, "done", (("k", "v"),))


def specs(**overrides: PhaseSpec) -> dict[str, PhaseSpec]:
    """A spec for every checklist phase (body ``ok``), with ``overrides`` by phase id."""
    out = {p: PhaseSpec(p, p, ok) for p in ORDER}
    out.update(overrides)
    return out


class Lines:
    def __init__(self) -> None:
        self.seen: list[tuple[Stream, str]] = []

    def __call__(self, stream: Stream, lines: list[str]) -> None:
        self.seen.extend((stream, line) for line in lines)


def make_flow(phases: dict[str, PhaseSpec] | None = None, **kwargs: Any) -> tuple[DeployFlow, ListJournal]:
    journal = ListJournal()
    kwargs.setdefault("operator", "alice")
    kwargs.setdefault("host", "prod-1")
    flow = DeployFlow(
        CHECKLIST, phases or specs(), session=None, journal=journal, clock=lambda: NOW, **kwargs
    )
    return flow, journal


def run_and_confirm(flow: DeployFlow, phase_id: str) -> PhaseOutcome:
    outcome = flow.run(phase_id, Lines())
    assert flow.confirm(phase_id, True).accepted, outcome
    return outcome


def test_engine_phases_are_the_checklist_phases() -> None:
    """Everything that can run before the stop does; the downtime is the stop to the start."""
    assert tuple(PHASES) == ORDER == (
        "backup", "preflight", "rehearsal", "notify",
        "stop_app", "deploy_code", "verify_files", "db_check", "migrate", "verify_migration", "start_app",
        "post_verify",
    )  # fmt: skip
    assert all(spec.id == phase_id and spec.body is not None for phase_id, spec in PHASES.items())
    changing = {p for p, spec in PHASES.items() if spec.changes_host}
    assert changing == {"backup", "stop_app", "deploy_code", "migrate", "start_app"}


def test_phases_run_in_checklist_order_each_confirmed_first() -> None:
    flow, journal = make_flow()
    assert flow.next_phase() == ORDER[0]
    with pytest.raises(GateRefused, match=ORDER[0]):
        flow.begin(ORDER[1])
    assert journal.events("phase_refused")[-1]["phase"] == ORDER[1]
    assert flow.running is None
    outcome = flow.run(ORDER[0], Lines())
    assert outcome == PhaseOutcome(PhaseStatus.OK, "done", (("k", "v"),))
    with pytest.raises(GateRefused):  # finished is not confirmed
        flow.begin(ORDER[1])
    assert flow.confirm(ORDER[0], True).accepted
    for phase_id in ORDER[1:]:
        assert flow.next_phase() == phase_id
        run_and_confirm(flow, phase_id)
    assert flow.all_confirmed and flow.next_phase() is None and flow.report().complete
    assert [e["phase"] for e in journal.events("phase_started")] == list(ORDER)
    finished = journal.events("phase_finished")
    assert [e["phase"] for e in finished] == list(ORDER)
    assert finished[0]["status"] == "ok" and finished[0]["summary"] == "done"
    assert finished[0]["facts"] == {"k": "v"} and finished[0]["commands"] == []
    assert isinstance(finished[0]["seconds"], float)


def test_a_failed_phase_cannot_be_confirmed_and_gates_the_next() -> None:
    def fails(call: PhaseCall) -> PhaseOutcome:
        return PhaseOutcome(PhaseStatus.FAILED, "mysqldump exited 2")

    flow, journal = make_flow(specs(backup=PhaseSpec("backup", "b", fails)))
    assert flow.run("backup", Lines()).status is PhaseStatus.FAILED
    assert not flow.confirm("backup", True).accepted
    assert journal.entries[-1]["event"] == "phase_not_confirmed" and journal.entries[-1]["answer"] is True
    assert flow.refusal("preflight") is not None and flow.next_phase() == "backup"


def test_a_phase_not_automated_is_refused_by_begin() -> None:
    flow, _ = make_flow(specs(backup=PhaseSpec("backup", "b", None)))
    assert not flow.can_run("backup")
    with pytest.raises(GateRefused, match="not automated yet"):
        flow.begin("backup")
    assert flow.running is None


def test_needs_refuses_until_an_earlier_phase_established_it() -> None:
    record = BackupRecord(path="/var/backups/x.sql.gz", size=10, sha256="ab" * 32, verified=True)

    def backs_up(call: PhaseCall) -> PhaseOutcome:
        call.establish(backup=record)
        return PhaseOutcome(PhaseStatus.OK, "backed up")

    def empty_backup(call: PhaseCall) -> PhaseOutcome:
        return PhaseOutcome(PhaseStatus.OK, "backed up (claims)")

    needy = PhaseSpec("preflight", "stop", ok, needs=("backup",))
    flow, journal = make_flow(specs(backup=PhaseSpec("backup", "b", empty_backup), preflight=needy))
    run_and_confirm(flow, "backup")
    reason = flow.refusal("preflight")
    assert reason == "phase 'preflight' needs backup from an earlier phase"
    with pytest.raises(GateRefused, match="needs backup from an earlier phase"):
        flow.run("preflight", Lines())
    assert journal.events("phase_refused")[-1]["reason"] == reason

    flow, _ = make_flow(specs(backup=PhaseSpec("backup", "b", backs_up), preflight=needy))
    run_and_confirm(flow, "backup")
    assert flow.refusal("preflight") is None
    assert flow.run("preflight", Lines()).status is PhaseStatus.OK


def test_needs_only_known_context_fields() -> None:
    with pytest.raises(ValueError, match="unknown context field"):
        PhaseSpec("x", "x", ok, needs=("no_such_fact",))


def test_context_changes_are_journaled() -> None:
    def deploys(call: PhaseCall) -> PhaseOutcome:
        assert call.context.commit_before is None
        call.establish(commit_before="a" * 40, commit_after="b" * 40)
        return PhaseOutcome(PhaseStatus.OK, "deployed")

    flow, journal = make_flow(specs(backup=PhaseSpec("backup", "b", deploys)))
    run_and_confirm(flow, "backup")
    assert flow.context.commit_before == "a" * 40 and flow.context.commit_after == "b" * 40
    assert journal.events("context_updated") == [
        {"event": "context_updated", "changes": {"commit_before": "a" * 40, "commit_after": "b" * 40}}
    ]
    events = [e["event"] for e in journal.entries]
    assert events.index("context_updated") < events.index("phase_finished")
    run_and_confirm(flow, "preflight")  # establishes nothing: nothing journaled
    assert len(journal.events("context_updated")) == 1


def test_a_body_that_raises_is_a_failed_outcome_with_a_traceback_on_disk(tmp_path: Path) -> None:
    def crashes(call: PhaseCall) -> PhaseOutcome:
        call.sink("stdout", ["before the crash"])
        raise RuntimeError("boom")

    flow, journal = make_flow(specs(backup=PhaseSpec("backup", "b", crashes)), transcript_dir=tmp_path)
    lines = Lines()
    outcome = flow.run("backup", lines)  # never raises
    assert outcome.status is PhaseStatus.FAILED and outcome.summary == "RuntimeError: boom"
    assert ("error", "RuntimeError: boom") in lines.seen
    assert lines.seen[-1] == ("info", "backup: failed: RuntimeError: boom")
    assert flow.running is None and flow.progress.status["backup"] is PhaseStatus.FAILED
    assert journal.events("phase_finished")[0]["summary"] == "RuntimeError: boom"
    text = (tmp_path / "backup.log").read_text()
    assert "  before the crash\n" in text and "!! RuntimeError: boom\n" in text
    assert "Traceback (most recent call last)" in text and 'raise RuntimeError("boom")' in text
    assert text.rstrip().endswith("# backup: failed: RuntimeError: boom")


def test_timeout_cancels_the_phase() -> None:
    seen_cancel = threading.Event()

    def hangs(call: PhaseCall) -> PhaseOutcome:
        if call.cancel.wait(5):
            seen_cancel.set()
            time.sleep(0.05)  # winding down takes a moment, as stopping a remote command does
        return PhaseOutcome(PhaseStatus.OK, "finished anyway", (("partial", "yes"),))

    flow, journal = make_flow(specs(backup=PhaseSpec("backup", "b", hangs, timeout=0.2)))
    outcome = flow.run("backup", Lines())
    assert seen_cancel.is_set()
    assert outcome.status is PhaseStatus.CANCELLED and outcome.summary == "timed out after 0.2 s"
    assert outcome.facts == (("partial", "yes"),)  # the evidence gathered so far is kept
    assert journal.events("phase_finished")[0]["status"] == "cancelled"
    assert not journal.events("cancel_requested")  # nobody asked
    assert not flow.confirm("backup", True).accepted


def test_timeout_is_reported_even_when_the_body_stops_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Timer fired, but the flow's own stopwatch, started a moment after the Timer, reads just under
    the timeout when the body returns at once: simulated here with the flow's clock reading 0.199 s."""
    import todobox_deploy.engine.flow as flow_module

    readings = iter([100.0, 100.199])

    class Clock:
        @staticmethod
        def monotonic() -> float:
            return next(readings)

    def stops_at_once(call: PhaseCall) -> PhaseOutcome:
        call.cancel.wait(5)
        return PhaseOutcome(PhaseStatus.OK, "stopped")

    monkeypatch.setattr(flow_module, "time", Clock)
    flow, journal = make_flow(specs(backup=PhaseSpec("backup", "b", stops_at_once, timeout=0.2)))
    outcome = flow.run("backup", Lines())
    assert not journal.events("cancel_requested")  # the operator never asked
    assert outcome.summary == "timed out after 0.2 s"


def test_request_cancel_is_journaled_and_cancels() -> None:
    started = threading.Event()

    def waits(call: PhaseCall) -> PhaseOutcome:
        started.set()
        call.cancel.wait(5)
        return PhaseOutcome(PhaseStatus.OK, "stopped early")

    flow, journal = make_flow(specs(backup=PhaseSpec("backup", "b", waits)))
    assert not flow.request_cancel()  # nothing runs
    flow.begin("backup")
    result: list[PhaseOutcome] = []
    worker = threading.Thread(target=lambda: result.append(flow.execute("backup", Lines())))
    worker.start()
    assert started.wait(5)
    assert flow.request_cancel() and not flow.request_cancel()  # once
    worker.join(5)
    assert result == [PhaseOutcome(PhaseStatus.CANCELLED, "cancelled by the operator")]
    assert journal.events("cancel_requested") == [{"event": "cancel_requested", "phase": "backup"}]


def test_by_hand_then_confirm_is_journaled_as_by_hand() -> None:
    flow, journal = make_flow(specs(backup=PhaseSpec("backup", "b", None)))
    with pytest.raises(GateRefused):
        flow.by_hand("preflight")  # the gate holds for work done by hand too
    outcome = flow.by_hand("backup")
    assert outcome == PhaseOutcome(PhaseStatus.SKIPPED, DONE_BY_HAND)
    assert journal.events("phase_by_hand") == [{"event": "phase_by_hand", "phase": "backup"}]
    c = flow.confirm("backup", True)
    assert c.accepted and c.by_hand and c.operator == "alice" and c.at == NOW
    (entry,) = journal.events("phase_confirmed")
    assert entry["by_hand"] is True and entry["unattended"] is False
    assert entry["status"] == "skipped" and entry["summary"] == DONE_BY_HAND
    assert entry["node"] == CHECKLIST.find_phase("backup").id  # type: ignore[union-attr]
    run_and_confirm(flow, "preflight")
    assert journal.events("phase_confirmed")[-1]["by_hand"] is False


def test_set_item_unattended_is_journaled() -> None:
    flow, journal = make_flow()
    item = flow.manual_items("predeploy")[0]
    c = flow.set_item(item.id, True, unattended=True)
    assert c.accepted and c.unattended
    assert journal.entries[-1] == {
        "event": "item_confirmed",
        "item": item.id,
        "title": item.title,
        "unattended": True,
    }
    flow.toggle_item(item.id)  # a person withdraws it
    assert journal.entries[-1]["event"] == "item_unconfirmed" and journal.entries[-1]["unattended"] is False
    assert item.id not in flow.progress.item_confirmations


def test_confirm_unattended_is_journaled() -> None:
    flow, journal = make_flow()
    flow.run("backup", Lines())
    assert flow.confirm("backup", True, unattended=True).unattended
    assert journal.events("phase_confirmed")[0]["unattended"] is True


def test_close_releases_the_lock_and_ends_the_session_once() -> None:
    lock = FakeLock()
    flow, journal = make_flow(lock=lock)
    flow.close(0, "done")
    flow.close(3, "again")
    assert lock.released == 1
    assert [e["event"] for e in journal.entries] == ["lock_released", "session_ended"]
    assert journal.entries[-1] == {"event": "session_ended", "exit_code": 0, "reason": "done"}


def test_close_while_a_phase_runs_abandons_it_and_survives_a_failing_release() -> None:
    started = threading.Event()

    def waits(call: PhaseCall) -> PhaseOutcome:
        started.set()
        call.cancel.wait(5)
        return PhaseOutcome(PhaseStatus.OK, "stopped")

    lock = FakeLock(error=OSError("host unreachable"))
    flow, journal = make_flow(specs(backup=PhaseSpec("backup", "b", waits)), lock=lock)
    flow.begin("backup")
    worker = threading.Thread(target=flow.execute, args=("backup", Lines()))
    worker.start()
    assert started.wait(5)
    flow.close(3, "operator quit")
    worker.join(5)
    events = [e["event"] for e in journal.entries]
    assert events.count("session_ended") == 1 and lock.released == 1
    assert (
        events.index("phase_abandoned") < events.index("lock_release_failed") < events.index("session_ended")
    )
    assert journal.events("phase_abandoned")[0]["phase"] == "backup"
    assert "host unreachable" in journal.events("lock_release_failed")[0]["error"]


def test_restore_takes_over_confirmed_phases_and_context() -> None:
    def deploys(call: PhaseCall) -> PhaseOutcome:
        call.establish(commit_before="c" * 40)
        return PhaseOutcome(PhaseStatus.OK, "deployed")

    first, _ = make_flow(specs(backup=PhaseSpec("backup", "b", deploys)))
    run_and_confirm(first, "backup")
    done = {"backup": (first.progress.outcomes["backup"], first.progress.phase_confirmations["backup"])}
    second, journal = make_flow()
    second.restore(done, first.context)
    assert second.progress.is_confirmed("backup") and second.next_phase() == "preflight"
    assert journal.events("context_updated")[0]["changes"] == {"commit_before": "c" * 40}
