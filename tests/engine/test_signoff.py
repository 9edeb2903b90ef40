"""The sign-off: each item with its evidence; never complete on work done by hand or without evidence."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from todobox_deploy.checklist.data import CHECKLIST
from todobox_deploy.core.outcome import PhaseOutcome, PhaseStatus
from todobox_deploy.engine.flow import DeployFlow
from todobox_deploy.engine.phases.spec import PhaseCall, PhaseSpec
from todobox_deploy.engine.signoff import build_signoff, sign, signoff_markdown


class Events:
    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def record(self, event: str, **fields: Any) -> dict[str, Any]:
        self.entries.append({"event": event, **fields})
        return self.entries[-1]


FACTS = {
    "post_verify": (
        ("Test 2: log /var/log/app.log", "12 line(s) since 12:00, no errors"),
        ("Test 4: ORM query", "exit 0: User query successful"),
        ("Test 5: API token", "exit 0"),
    )
}


def body(phase: str) -> Any:
    def run(call: PhaseCall) -> PhaseOutcome:
        return PhaseOutcome(PhaseStatus.OK, f"{phase} \x1b[2J| done", FACTS.get(phase, ()))

    return run


def deployed(tmp_path: Path, *, by_hand: str | None = None) -> tuple[DeployFlow, Events]:
    phases = {p: PhaseSpec(p, p, None if p == by_hand else body(p)) for p in CHECKLIST.phases()}
    events = Events()
    flow = DeployFlow(CHECKLIST, phases, session=None, operator="alice", host="prod", journal=events)
    flow.session_dir = tmp_path
    for p in CHECKLIST.phases():
        if p == by_hand:
            flow.by_hand(p)
        else:
            flow.run(p, lambda s, ls: None)
        assert flow.confirm(p, True).accepted
    return flow, events


def test_items_pass_on_the_evidence_phases_observed(tmp_path: Path) -> None:
    flow, _ = deployed(tmp_path)
    s = build_signoff(flow)
    verdicts = {i.id: i.verdict for i in (*s.post_deploy, *s.success)}
    for item in ("success.migration", "success.app_starts", "success.no_unknown_column", "success.db_queries",
                 "postdeploy.no_unknown_column", "postdeploy.api_token"):  # fmt: skip
        assert verdicts[item] == "pass", item
    assert verdicts["postdeploy.login"] == "no evidence"  # test 3 is a person's to confirm
    assert not s.complete and "Can login to application: no evidence" in s.problems
    flow.set_item("postdeploy.login", True)
    flow.set_item("postdeploy.user_features", True)
    flow.set_item("postdeploy.team_notified", True)
    flow.set_item("success.features", True)
    s = build_signoff(flow)
    assert s.complete, s.problems
    assert {i.id: i.verdict for i in s.post_deploy}["postdeploy.login"] == "by hand"


def test_unattended_or_by_hand_is_never_complete(tmp_path: Path) -> None:
    flow, _ = deployed(tmp_path, by_hand="backup")
    for item in flow.manual_items("postdeploy") + flow.manual_items("success"):
        flow.set_item(item.id, True, unattended=True)
    s = build_signoff(flow)
    assert not s.complete
    assert any("done by hand" in p for p in s.problems)
    assert any(p.endswith("unattended") for p in s.problems)


def test_a_skipped_phase_is_never_complete(tmp_path: Path) -> None:
    """A read-only step skipped with a reason is on the record, but its check never ran: no evidence."""
    phases = {p: PhaseSpec(p, p, body(p)) for p in CHECKLIST.phases()}
    flow = DeployFlow(CHECKLIST, phases, session=None, operator="alice", host="prod", journal=Events())
    flow.session_dir = tmp_path
    for p in CHECKLIST.phases():
        if p == "db_check":
            flow.skip(p, "checked by hand in the MySQL console")
        else:
            flow.run(p, lambda s, ls: None)
        assert flow.confirm(p, True).accepted
    for item in flow.manual_items("postdeploy") + flow.manual_items("success"):
        flow.set_item(item.id, True)
    s = build_signoff(flow)
    assert not s.complete
    (problem,) = s.problems
    assert "skipped, no evidence" in problem and "checked by hand in the MySQL console" in problem


def test_signing_journals_and_writes_both_files_with_host_text_inert(tmp_path: Path) -> None:
    flow, events = deployed(tmp_path)
    s, paths = sign(flow, "Alice Example")
    assert paths == (tmp_path / "signoff.md", tmp_path / "signoff.json")
    assert events.entries[-1]["event"] == "signed_off" and events.entries[-1]["signed_by"] == "Alice Example"
    md = (tmp_path / "signoff.md").read_text()
    assert "\x1b" not in md and "\\x1b[2J" in md and "\\| done" in md  # escaped, the table intact
    assert "Signed by: Alice Example" in md and "**NOT COMPLETE**" in md
    data = json.loads((tmp_path / "signoff.json").read_text())
    assert data["signed_by"] == "Alice Example" and data["complete"] is False and data["problems"]
    assert signoff_markdown(s) == md
