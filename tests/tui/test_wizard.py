"""Pilot tests of the wizard over a real DeployFlow whose phases are scripted (no servers)."""

from __future__ import annotations

import gc
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from rich.style import Style
from textual.pilot import Pilot
from textual.widgets import Button, DataTable, Input, TextArea

from todobox_deploy.checklist import CHECKLIST, PHASES
from todobox_deploy.core.outcome import PhaseOutcome, PhaseStatus
from todobox_deploy.core.startup import begin_startup, end_startup
from todobox_deploy.tui.app import DeployApp
from todobox_deploy.tui.screens.ask import AskScreen
from todobox_deploy.tui.screens.confirm import ConfirmPhase
from todobox_deploy.tui.screens.gates import DestructiveConfirm
from todobox_deploy.tui.screens.signoff import SignOffScreen
from todobox_deploy.tui.screens.wizard import WizardScreen
from todobox_deploy.tui.widgets.checklist_tree import ChecklistTree
from todobox_deploy.tui.widgets.deploy_header import DeployHeader
from todobox_deploy.tui.widgets.log_pane import LogPane

from .conftest import DEMO_CONFIG, FROZEN, JournalView, Script, ScriptedPhases, wait_for

SIZE = (120, 36)


def wizard(app: DeployApp) -> WizardScreen:
    assert app.wizard is not None
    return app.wizard


async def through_gates(pilot: Pilot[Any], app: DeployApp, timeout: float = 5.0) -> None:
    """Wait for the phase's confirmation; a destructive step's second confirmation on the way is given
    by typing the phase's name, as the operator would."""
    gated = (ConfirmPhase, DestructiveConfirm)
    await wait_for(pilot, lambda: isinstance(app.screen, gated), timeout)
    screen = app.screen
    if isinstance(screen, DestructiveConfirm):
        await pilot.press(*screen.phase_id, "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmPhase), timeout)


async def run_and_confirm(pilot: Pilot[Any], app: DeployApp, key: str = "g", answer: str = "y") -> None:
    await pilot.press(key)
    await through_gates(pilot, app)
    await pilot.press(answer)
    await wait_for(pilot, lambda: isinstance(app.screen, WizardScreen))


async def test_tree_has_all_top_level_sections(build_app: Callable[..., DeployApp]) -> None:
    app = build_app(config=DEMO_CONFIG)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, WizardScreen)
        tree = app.screen.query_one(ChecklistTree)
        labels = [str(child.label) for child in tree.root.children]
        assert labels == [c.title for c in CHECKLIST.children]
        assert all(tree.node_for(n.id) is not None for n in CHECKLIST.walk() if n is not CHECKLIST)
        assert tree.cursor_node is not None and tree.cursor_node.data is not None
        assert tree.cursor_node.data.id == "predeploy.backup"  # the first phase is preselected
        status = str(app.screen.query_one("#status-line").render())
        assert "operator alice" in status and "next: backup" in status
        header = str(app.screen.query_one(DeployHeader).render())
        assert "prod-app-1.example.com" in header  # the host is in the header


async def test_the_rest_mounts_after_the_first_frame_and_the_startup_ends(
    build_app: Callable[..., DeployApp],
) -> None:
    """The first frame shows the details' title and the log pane's frame; the Markdown and the log mount
    right after it, and the startup tuning (collector off, short switch interval) ends there."""
    interval = sys.getswitchinterval()
    begin_startup()
    try:
        app = build_app(config=DEMO_CONFIG)
        async with app.run_test(size=SIZE) as pilot:
            screen = wizard(app)
            await wait_for(pilot, lambda: screen.details_body is not None and screen.log_pane.log_ready)
            assert screen.first_frame_shown and not screen.query("#details-title")
            assert "Backup production database" in screen.details_shown
            await wait_for(pilot, gc.isenabled)
            assert sys.getswitchinterval() == interval
    finally:
        end_startup()


async def test_selecting_a_node_inside_a_collapsed_section_lands_on_it(
    build_app: Callable[..., DeployApp],
) -> None:
    app = build_app(config=DEMO_CONFIG)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        tree = wizard(app).checklist_tree
        for node in CHECKLIST.walk():
            if node is CHECKLIST:
                continue
            for section in tree.root.children:
                section.collapse()
            tree.select_id(node.id)
            assert tree.cursor_node is not None and tree.cursor_node.data is node, node.id


async def test_tree_measures_each_label_as_drawn(build_app: Callable[..., DeployApp]) -> None:
    """The tree's cheap label measure (no drawing) equals the width of the drawn label, for every node,
    collapsed and expanded, with each kind of status icon."""
    app = build_app(config=DEMO_CONFIG)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        tree = wizard(app).checklist_tree
        tree.update_state({"backup": PhaseStatus.FAILED}, {"predeploy.read_summary"})
        style = Style()
        for expanded in (False, True):
            for node in CHECKLIST.walk():
                tree_node = tree.node_for(node.id) if node is not CHECKLIST else tree.root
                assert tree_node is not None
                if tree_node.allow_expand and expanded:
                    tree_node.expand()
                elif tree_node.allow_expand:
                    tree_node.collapse()
                drawn = tree.render_label(tree_node, style, style).cell_len
                assert tree.get_label_width(tree_node) == drawn, node.id


async def test_run_streams_lines_into_log(
    build_app: Callable[..., DeployApp], scripted: ScriptedPhases
) -> None:
    scripted.scripts["backup"] = Script(lines=2_500, stderr=("mysqldump: warning",))
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmPhase))
        pane = wizard(app).log_pane
        await wait_for(pilot, lambda: pane.log_widget.line_count == 2_502)
        lines = pane.log_widget.lines
        assert lines[0] == "  backup line 0" and lines[2_499] == "  backup line 2499"
        assert lines[-2] == "! mysqldump: warning"  # stderr is marked
        assert lines[-1] == "» backup: ok: backup done"  # the flow's closing line
        assert scripted.runs == ["backup"]


async def test_next_phase_refused_until_confirmed(
    build_app: Callable[..., DeployApp], scripted: ScriptedPhases, journal: JournalView
) -> None:
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("g")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmPhase))
        await pilot.press("n")  # not yet
        await wait_for(pilot, lambda: isinstance(app.screen, WizardScreen))
        tree = wizard(app).checklist_tree
        tree.select_id("deploy.stop")
        await pilot.pause()
        await pilot.press("r")
        await pilot.pause()
        assert scripted.runs == ["backup"]
        assert journal[-1]["event"] == "phase_refused" and "backup" in journal[-1]["reason"]
        assert not isinstance(app.screen, ConfirmPhase)


async def test_confirmation_is_journaled(
    build_app: Callable[..., DeployApp], scripted: ScriptedPhases, journal: JournalView
) -> None:
    app = build_app(operator="carol")
    async with app.run_test(size=SIZE) as pilot:
        await run_and_confirm(pilot, app)
        await run_and_confirm(pilot, app)
        assert scripted.runs == ["backup", "preflight"]
        confirmed = [e for e in journal if e["event"] == "phase_confirmed"]
        assert [e["phase"] for e in confirmed] == ["backup", "preflight"]
        assert all(e["operator"] == "carol" and e["status"] == "ok" for e in confirmed)
        assert all(e["unattended"] is False and e["by_hand"] is False for e in confirmed)
        assert app.progress.phase_confirmations["backup"].at == FROZEN  # the flow's clock
        assert app.progress.phase_confirmations["backup"].operator == "carol"
        assert app.progress.next_phase() == "rehearsal"


async def test_failed_phase_does_not_unlock_and_confirm_not_focused(
    build_app: Callable[..., DeployApp], scripted: ScriptedPhases, journal: JournalView
) -> None:
    scripted.scripts["backup"] = Script(outcome=PhaseOutcome(PhaseStatus.FAILED, "mysqldump exited 2"))
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("g")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmPhase))
        focused = app.focused
        assert isinstance(focused, Button) and focused.id == "confirm-no"
        await pilot.press("y")
        await wait_for(pilot, lambda: isinstance(app.screen, WizardScreen))
        assert journal[-1]["event"] == "phase_not_confirmed"
        assert app.progress.next_phase() == "backup"


async def test_manual_item_confirmation(build_app: Callable[..., DeployApp], journal: JournalView) -> None:
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        wizard(app).checklist_tree.select_id("predeploy.read_analysis")
        await pilot.pause()
        await pilot.press("space")
        await pilot.pause()
        assert journal[-1]["event"] == "item_confirmed" and journal[-1]["item"] == "predeploy.read_analysis"
        assert journal[-1]["operator"] == "alice"
        await pilot.press("c")  # toggles back
        await pilot.pause()
        assert journal[-1]["event"] == "item_unconfirmed"


async def test_cancel(
    build_app: Callable[..., DeployApp], scripted: ScriptedPhases, journal: JournalView
) -> None:
    scripted.scripts["backup"] = Script(block_until_cancel=True)
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("g")
        await wait_for(pilot, scripted.started.is_set)
        assert app.progress.running == "backup"
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmPhase))
        assert app.progress.status["backup"] is PhaseStatus.CANCELLED
        assert any(e["event"] == "cancel_requested" for e in journal)
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, WizardScreen))
        assert app.progress.next_phase() == "backup"


async def test_phase_that_raises_is_a_readable_failure(
    build_app: Callable[..., DeployApp], scripted: ScriptedPhases, journal: JournalView
) -> None:
    scripted.scripts["backup"] = Script(lines=3, raise_error=ConnectionError("ssh channel closed"))
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("g")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmPhase))
        assert app.progress.status["backup"] is PhaseStatus.FAILED
        assert app.progress.outcomes["backup"].summary == "ConnectionError: ssh channel closed"
        pane = wizard(app).log_pane
        await wait_for(pilot, lambda: pane.log_widget.line_count == 5)
        assert pane.log_widget.lines[-2:] == [
            "✘ ConnectionError: ssh channel closed",
            "» backup: failed: ConnectionError: ssh channel closed",
        ]
    finished = [e for e in journal if e["event"] == "phase_finished"]
    assert [(e["phase"], e["status"]) for e in finished] == [("backup", "failed")]


async def test_worker_crash_marks_phase_failed(
    build_app: Callable[..., DeployApp], scripted: ScriptedPhases, journal: JournalView
) -> None:
    """The worker dies outside the flow's own error handling: the phase still ends FAILED, on the record."""
    app = build_app()

    def crash(phase_id: str, sink: Any, cancel: Any = None) -> PhaseOutcome:
        sink("stdout", [f"{phase_id} line {i}" for i in range(3)])
        raise ConnectionError("ssh channel closed")

    async with app.run_test(size=SIZE) as pilot:
        with patch.object(app.flow, "execute", crash):
            await pilot.press("g")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmPhase))
        assert app.progress.status["backup"] is PhaseStatus.FAILED and app.progress.running is None
        pane = wizard(app).log_pane
        await wait_for(pilot, lambda: any("ssh channel closed" in line for line in pane.log_widget.lines))
        assert pane.log_widget.lines[-1].startswith("✘ phase crashed: ConnectionError")
        await pilot.press("y")  # a failed phase cannot be confirmed
        await wait_for(pilot, lambda: isinstance(app.screen, WizardScreen))
        assert app.progress.next_phase() == "backup"
    finished = [e for e in journal if e["event"] == "phase_finished"]
    assert [(e["phase"], e["status"]) for e in finished] == [("backup", "failed")]
    assert "ssh channel closed" in finished[0]["summary"]


async def test_search_finds_a_line(build_app: Callable[..., DeployApp], scripted: ScriptedPhases) -> None:
    scripted.scripts["backup"] = Script(lines=500)
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await run_and_confirm(pilot, app, answer="n")
        pane = wizard(app).log_pane
        await wait_for(pilot, lambda: pane.log_widget.line_count == 501)  # 500 and the closing line
        await pilot.press("slash")
        assert isinstance(app.focused, Input)
        await pilot.press(*"line 123", "enter")
        await pilot.pause()
        log = pane.log_widget
        assert log.match_line == 123 and not pane.follow
        assert log.scroll_offset.y <= 123 < log.scroll_offset.y + log.size.height
        await pilot.press("n")  # wraps: no other "line 123"
        assert log.match_line == 123
        pane.search("line 12")
        first = log.match_line
        await pilot.press("n")
        assert log.match_line is not None and first is not None and log.match_line > first
        await pilot.press("N")
        assert log.match_line == first


async def test_earlier_phase_log_viewable(
    build_app: Callable[..., DeployApp], scripted: ScriptedPhases
) -> None:
    scripted.scripts["preflight"] = Script(lines=5, block_until_cancel=True)
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await run_and_confirm(pilot, app)
        await pilot.press("g")
        await wait_for(pilot, scripted.started.is_set)
        screen = wizard(app)
        pane = screen.log_pane
        screen.checklist_tree.select_id("predeploy.backup")  # view the finished phase while preflight runs
        await pilot.pause()
        assert pane.viewing == "backup"
        await wait_for(pilot, lambda: pane.log_widget.lines[:1] == ["  backup line 0"])
        assert app.progress.running == "preflight"
        await pilot.press("l")  # follow live
        await pilot.pause()
        assert pane.viewing == "preflight" and pane.follow
        await wait_for(pilot, lambda: pane.log_widget.lines[:1] == ["  preflight line 0"])
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmPhase))


async def test_follow_mode_counts_new_lines() -> None:
    from textual.app import App, ComposeResult

    class Host(App[None]):
        def compose(self) -> ComposeResult:
            yield LogPane(max_lines=1_000, tick_cap=200)

    app = Host()
    async with app.run_test(size=(80, 20)) as pilot:
        pane = app.query_one(LogPane)
        pane.ingest("p", "stdout", [f"l{i}" for i in range(300)])
        await wait_for(pilot, lambda: pane.log_widget.line_count == 300)
        assert pane.log_widget.is_vertical_scroll_end
        pane.log_widget.scroll_home(animate=False, immediate=True)
        await pilot.pause()
        pane.ingest("p", "stderr", [f"e{i}" for i in range(1_500)])  # more than max_lines: bounded
        await wait_for(pilot, lambda: not pane.pending_count)
        assert pane.log_widget.line_count == 1_016 and pane.new_lines > 0  # window + marker headroom
        assert len(pane.window("p")) == 1_000
        assert any(line.startswith("» … 500 lines not painted") for line in pane.log_widget.lines)
        pane.action_toggle_follow()  # off
        assert not pane.follow
        pane.action_toggle_follow()  # on: jump to the tail
        await pilot.pause()
        assert pane.follow and pane.new_lines == 0 and pane.log_widget.is_vertical_scroll_end


async def test_transcript_written(
    build_app: Callable[..., DeployApp], scripted: ScriptedPhases, tmp_path: Path
) -> None:
    """The pane keeps a bounded window; the engine's transcript on disk keeps every line."""
    scripted.scripts["backup"] = Script(lines=12_000, stderr=("mysqldump: warning",))
    app = build_app(transcript_dir=tmp_path / "transcripts", max_log_lines=1_000)
    transcript = tmp_path / "transcripts" / "backup.log"
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("g")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmPhase))
        assert len(wizard(app).log_pane.window("backup")) == 1_000
        lines = transcript.read_text().splitlines()  # complete and closed once the phase has finished
    assert len(lines) == 12_002
    stamp = r"\d\d:\d\d:\d\d "
    assert re.fullmatch(stamp + "  backup line 0", lines[0])
    assert re.fullmatch(stamp + "  backup line 11999", lines[11_999])
    assert re.fullmatch(stamp + "! mysqldump: warning", lines[12_000])
    assert re.fullmatch(stamp + "# backup: ok: backup done", lines[12_001])


async def test_signoff_is_read_only(build_app: Callable[..., DeployApp], scripted: ScriptedPhases) -> None:
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, SignOffScreen))
        screen = app.screen
        assert not screen.query(TextArea) and not screen.query(DataTable)
        # the one input is the signature's name, the one button signs
        assert [i.id for i in screen.query(Input)] == ["signoff-name"]
        assert [b.id for b in screen.query(Button)] == ["signoff-sign-button"]
        before = (list(scripted.runs), dict(app.progress.status), dict(app.progress.item_confirmations))
        for key in ("r", "g", "c", "space", "y", "enter", "ctrl+c", "f", "s", "l", "z"):
            await pilot.press(key)
        await pilot.pause()
        assert isinstance(app.screen, SignOffScreen)
        assert (scripted.runs, app.progress.status, app.progress.item_confirmations) == before
        assert len(screen.signoff.phases) == len(PHASES)
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, WizardScreen))


async def test_all_phases_confirmed_opens_signoff(
    build_app: Callable[..., DeployApp], scripted: ScriptedPhases, journal: JournalView
) -> None:
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        for _ in PHASES:
            await pilot.press("g")
            await through_gates(pilot, app)
            await pilot.press("y")
            await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmPhase))
        assert scripted.runs == list(PHASES)
        assert isinstance(app.screen, SignOffScreen)
        # every phase confirmed, but the post-deployment items have no evidence: not complete
        assert not app.screen.signoff.complete
        banner = str(app.screen.query_one("#signoff-state").render())
        assert "NOT COMPLETE" in banner and "COMPLETE:" not in banner.replace("NOT COMPLETE:", "")
        await pilot.press("escape")
        await pilot.press("ctrl+q")
    assert app.return_value == 0


async def test_command_palette_runs_next_phase(
    build_app: Callable[..., DeployApp], scripted: ScriptedPhases
) -> None:
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+p")
        await pilot.pause(0.1)
        await pilot.press(*"Run next phase")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmPhase))
        assert scripted.runs == ["backup"]


async def test_palette_offers_nothing_mutating_on_signoff(build_app: Callable[..., DeployApp]) -> None:
    from todobox_deploy.tui.commands import DeployCommands

    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        on_wizard = [name for name, _, _ in DeployCommands(app.screen).commands()]
        assert "Run next phase" in on_wizard and "Go to phase: 5. Run Database Migrations" in on_wizard
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, SignOffScreen))
        assert [name for name, _, _ in DeployCommands(app.screen).commands()] == [
            "Back to the wizard",
            "Write the support bundle",  # reads the session: changes nothing of the deploy
        ]


async def test_ctrl_c_cancels_and_quit_is_guarded(
    build_app: Callable[..., DeployApp], scripted: ScriptedPhases
) -> None:
    scripted.scripts["backup"] = Script(block_until_cancel=True)
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("g")
        await wait_for(pilot, scripted.started.is_set)
        await pilot.press("ctrl+q")  # refused once while a phase runs
        await pilot.pause()
        assert app.is_running and app.progress.running == "backup"
        await pilot.press("ctrl+c")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmPhase))
        assert app.progress.status["backup"] is PhaseStatus.CANCELLED


async def test_journal_failure_is_reported_not_fatal(
    build_app: Callable[..., DeployApp], scripted: ScriptedPhases
) -> None:
    class Broken:
        def record(self, event: str, **fields: Any) -> dict[str, Any]:
            raise OSError("disk full")

    app = build_app(journal=Broken())
    async with app.run_test(size=SIZE) as pilot:
        with patch.object(app, "notify") as notify:
            await run_and_confirm(pilot, app)
        assert app.progress.is_confirmed("backup")
        notices = [str(call.args[0]) for call in notify.call_args_list]
        assert any("disk full" in n and "phase_finished" in n for n in notices)  # from the phase's worker
        assert any("disk full" in n and "phase_confirmed" in n for n in notices)
        assert app.flow.journal_errors and all("disk full" in e for e in app.flow.journal_errors)


async def test_not_yet_then_review_and_confirm(
    build_app: Callable[..., DeployApp], scripted: ScriptedPhases, journal: JournalView
) -> None:
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await run_and_confirm(pilot, app, answer="n")
        assert not app.progress.is_confirmed("backup")
        wizard(app).checklist_tree.select_id("predeploy.backup")
        await pilot.pause()
        await pilot.press("c")  # review the finished phase again, without re-running it
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmPhase))
        await pilot.press("y")
        await wait_for(pilot, lambda: isinstance(app.screen, WizardScreen))
        assert app.progress.is_confirmed("backup") and scripted.runs == ["backup"]
        assert [e["event"] for e in journal if e["event"].startswith("phase_")][-2:] == [
            "phase_not_confirmed",
            "phase_confirmed",
        ]


async def test_phase_the_engine_cannot_run_is_done_by_hand_on_the_record(
    build_app: Callable[..., DeployApp], scripted: ScriptedPhases, journal: JournalView
) -> None:
    """A phase not automated yet does not block the deploy: the operator confirms the manual work."""
    scripted.manual.update({"backup", "preflight"})
    app = build_app(operator="dana")
    async with app.run_test(size=SIZE) as pilot:
        await run_and_confirm(pilot, app)  # backup: by hand
        await run_and_confirm(pilot, app)  # preflight: by hand
        await run_and_confirm(pilot, app)  # rehearsal: the engine runs it
        assert scripted.runs == ["rehearsal"]
        by_hand = [e["phase"] for e in journal if e["event"] == "phase_by_hand"]
        assert by_hand == ["backup", "preflight"]
        confirmed = [e for e in journal if e["event"] == "phase_confirmed"]
        assert [(e["phase"], e["status"], e["operator"]) for e in confirmed] == [
            ("backup", "skipped", "dana"),
            ("preflight", "skipped", "dana"),
            ("rehearsal", "ok", "dana"),
        ]
        assert "by hand" in confirmed[0]["summary"]
        assert [e["by_hand"] for e in confirmed] == [True, True, False]


@pytest.mark.parametrize(("answer", "online"), [("n", False), ("y", True)])
async def test_online_migration_offered_at_the_stop_gate(
    build_app: Callable[..., DeployApp],
    scripted: ScriptedPhases,
    journal: JournalView,
    answer: str,
    online: bool,
) -> None:
    """A rehearsal that saw an additive migration makes the stop gate ask first; the answer is journaled."""
    scripted.scripts["rehearsal"] = Script(establish={"migration_additive": True, "rehearsal_seconds": 2.5})
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        for _ in ("backup", "preflight", "rehearsal", "notify"):
            await run_and_confirm(pilot, app)
        await pilot.press("g")
        await wait_for(pilot, lambda: isinstance(app.screen, AskScreen))
        assert "it took 2.5 s on the copy" in str(app.screen.query_one("#ask-text").render())
        assert isinstance(app.focused, Button) and app.focused.id == "ask-no"  # the checklist's way
        assert scripted.runs == ["backup", "preflight", "rehearsal", "notify"]  # nothing stopped yet
        await pilot.press(answer)
        await wait_for(pilot, lambda: isinstance(app.screen, (ConfirmPhase, DestructiveConfirm)))
        # stopping the app is destructive: its name is typed first; chosen online, nothing is stopped
        assert isinstance(app.screen, DestructiveConfirm) is not online
        await through_gates(pilot, app)
        assert scripted.runs[-1] == "stop_app" and app.flow.context.online_migration is online
    chosen = [e["event"] for e in journal if e["event"].startswith("online_migration_")]
    assert chosen == ["online_migration_chosen" if online else "online_migration_declined"]
