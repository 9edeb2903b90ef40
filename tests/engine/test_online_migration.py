"""The online migration option: offered at the stop gate only after a purely additive rehearsal; chosen,
the stop leaves the app serving and the start restarts it (the downtime is the restart)."""

from __future__ import annotations

import dataclasses
import io
import threading
from typing import Any

from todobox_deploy.checklist.data import CHECKLIST
from todobox_deploy.core.context import DeployContext
from todobox_deploy.core.outcome import PhaseOutcome, PhaseStatus
from todobox_deploy.engine.flow import DeployFlow
from todobox_deploy.engine.phases import PHASES
from todobox_deploy.engine.phases.service import start_app, stop_app
from todobox_deploy.engine.phases.spec import PhaseCall, PhaseSpec
from todobox_deploy.plain import Console, PlainRun

from .test_phase_logic import Result, ScriptedSession


class Events:
    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def record(self, event: str, **fields: Any) -> dict[str, Any]:
        self.entries.append({"event": event, **fields})
        return self.entries[-1]


def ok(call: PhaseCall) -> PhaseOutcome:
    return PhaseOutcome(PhaseStatus.OK, "done")


def additive(call: PhaseCall) -> PhaseOutcome:
    call.establish(migration_additive=True, rehearsal_seconds=1.5)
    return PhaseOutcome(PhaseStatus.OK, "rehearsed")


def flow_with(rehearsal_body: Any) -> tuple[DeployFlow, Events]:
    phases = {p: PhaseSpec(p, p, ok) for p in CHECKLIST.phases()}
    phases["rehearsal"] = PhaseSpec("rehearsal", "r", rehearsal_body)
    events = Events()
    return DeployFlow(CHECKLIST, phases, session=None, operator="alice", host="h", journal=events), events


def run_until_stop(flow: DeployFlow) -> None:
    for phase in ("backup", "preflight", "rehearsal", "notify"):
        flow.run(phase, lambda s, ls: None)
        assert flow.confirm(phase, True).accepted


def test_offered_only_after_an_additive_rehearsal_and_only_before_the_stop() -> None:
    flow, _ = flow_with(ok)
    run_until_stop(flow)
    assert flow.online_offer() is None  # the rehearsal did not say additive
    flow, events = flow_with(additive)
    assert flow.online_offer() is None  # no rehearsal yet
    run_until_stop(flow)
    offer = flow.online_offer()
    assert offer is not None and "1.5 s" in offer and "default" in offer
    flow.choose_online(True)
    assert flow.context.online_migration is True and flow.online_offer() is None  # asked once
    assert [e for e in events.entries if e["event"] == "online_migration_chosen"]
    assert {"event": "context_updated", "changes": {"online_migration": True}} in events.entries


def test_plain_yes_keeps_the_checklists_order_and_a_person_may_choose_online() -> None:
    for yes, answers, expected in ((True, "", False), (False, "y\ny\n", True), (False, "n\n", False)):
        flow, _ = flow_with(additive)
        run_until_stop(flow)
        out = io.StringIO()
        PlainRun(flow, Console(yes=yes, stdin=io.StringIO(answers), stdout=out))._phase("stop_app")
        assert flow.context.online_migration is expected, out.getvalue()
        assert "purely additive" in out.getvalue()


def _call(session: ScriptedSession, ctx: DeployContext) -> PhaseCall:
    return PhaseCall(session, lambda s, ls: None, threading.Event(), ctx)  # type: ignore[arg-type]


def test_online_the_stop_leaves_the_app_serving_and_the_start_restarts_it() -> None:
    stop = ScriptedSession({})  # any host command would be unscripted: the stop must run none
    call = _call(stop, DeployContext(online_migration=True))
    outcome = stop_app(call)
    assert outcome.status is PhaseStatus.OK and "left running" in outcome.summary and stop.ran == []
    assert call.context.app_down_at is None  # no downtime yet
    start = ScriptedSession({"stat": Result(0, "10"), "stop todobox && ": Result(0), "GET": Result(0, "200"),
                             "tail": Result(0)})  # fmt: skip
    call = _call(start, DeployContext(online_migration=True))
    outcome = start_app(call)
    assert outcome.status is PhaseStatus.OK, outcome.summary
    # a restart is the stop, waited for, then the start: the health poll never sees the old process
    assert any("supervisorctl stop todobox && supervisorctl start todobox" in c for c in start.ran)
    assert call.context.app_down_at is not None and call.context.app_up_at is not None
    assert outcome.fact("downtime") is not None


def test_a_probe_that_errs_is_never_proof_that_the_app_is_down() -> None:
    def stopped(probe: str) -> ScriptedSession:
        return ScriptedSession(
            {"stop todobox": Result(0), "status todobox": Result(3), "GET": Result(0, probe)}
        )

    outcome = stop_app(
        _call(stopped("error InvalidURL URL can't contain control characters"), DeployContext())
    )
    assert outcome.status is PhaseStatus.FAILED and "cannot verify" in outcome.summary
    refused = stopped("down ConnectionRefusedError [Errno 111] Connection refused")
    assert stop_app(_call(refused, DeployContext())).status is PhaseStatus.OK


def test_the_stop_changes_the_host_only_when_it_really_stops_the_app() -> None:
    """What the TUI's second, deliberate confirmation keys on: chosen online (or nothing to deploy), the
    stop leaves the app running, so it is not a destructive step then."""
    flow, _ = flow_with(additive)
    for phase in ("stop_app", "migrate", "start_app"):
        flow.phases[phase] = PHASES[phase]
    run_until_stop(flow)
    assert all(flow.changes_host_now(p) for p in ("stop_app", "migrate", "start_app"))
    flow.choose_online(True)
    assert not flow.changes_host_now("stop_app") and flow.changes_host_now("migrate")
    flow.context = dataclasses.replace(flow.context, nothing_to_deploy=True)
    assert not flow.changes_host_now("migrate") and not flow.changes_host_now("start_app")
