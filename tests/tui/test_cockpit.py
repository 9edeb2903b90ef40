"""The operator's cockpit in the wizard (scripted phases): the header and downtime clock, failure handling
(retry, skip with a reason, the rollback offer), the second confirmation of destructive steps, the
sign-off with a signature, the support bundle key, the help screen, 80x24, and gates never covered."""

from __future__ import annotations

import dataclasses
import re
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Button, Input, Markdown
from textual.widgets._toast import Toast

from todobox_deploy.core.context import DeployContext
from todobox_deploy.core.outcome import PhaseOutcome, PhaseStatus
from todobox_deploy.engine.flow import SKIPPABLE, GateRefused
from todobox_deploy.tui.app import DeployApp
from todobox_deploy.tui.failure import failure_options, rollback_command
from todobox_deploy.tui.screens.confirm import ConfirmPhase
from todobox_deploy.tui.screens.gates import DestructiveConfirm, RollbackOffer, SkipReason
from todobox_deploy.tui.screens.help import HelpScreen, key_sections
from todobox_deploy.tui.screens.signoff import SignOffScreen
from todobox_deploy.tui.screens.wizard import WizardScreen
from todobox_deploy.tui.widgets.deploy_header import DeployHeader, header_facts

from .conftest import DEMO_CONFIG, FROZEN, JournalView, Script, ScriptedPhases, wait_for
from .fakes import FakeHost
from .test_wizard import SIZE, run_and_confirm, through_gates, wizard

BEFORE = ("backup", "preflight", "rehearsal", "notify")
DOWN_AT = "2026-11-24T09:29:00.000+00:00"  # a minute before the frozen clock
UP_AT = "2026-11-24T09:30:23.500+00:00"


def header(app: DeployApp) -> dict[str, str]:
    """What the header shows, part by part; each part is checked to be on the drawn line."""
    shown = wizard(app).query_one(DeployHeader)
    facts = shown.facts
    assert facts is not None
    line = str(shown.render())
    downtime = facts.downtime if facts.state != "none" else ""
    assert facts.elapsed in line and downtime in line and facts.facts[:20] in line
    return {"facts": facts.facts, "elapsed": facts.elapsed, "downtime": downtime, "state": facts.state}


async def run_phases(pilot: Pilot[Any], app: DeployApp, phases: tuple[str, ...]) -> None:
    for phase in phases:
        assert app.progress.next_phase() == phase
        await run_and_confirm(pilot, app)


# -- the header ----------------------------------------------------------------------------------------


async def test_header_commits_revision_and_downtime_clock(
    build_app: Callable[..., DeployApp], scripted: ScriptedPhases
) -> None:
    scripted.scripts["preflight"] = Script(
        establish={"commit_before": "a1b2c3d4" * 5, "commit_target": "e5f6" * 10}
    )
    scripted.scripts["db_check"] = Script(establish={"db_revision_before": "c682ef478e45"})
    scripted.scripts["stop_app"] = Script(establish={"app_down_at": DOWN_AT})
    scripted.scripts["start_app"] = Script(establish={"app_up_at": UP_AT})
    app = build_app(config=DEMO_CONFIG)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        first = header(app)
        assert "prod-app-1.example.com" in first["facts"] and "commit -" in first["facts"]
        assert first["elapsed"] == "elapsed 00:00:00"
        assert first["state"] == "none" and first["downtime"] == ""  # not stopped yet
        await run_phases(pilot, app, (*BEFORE, "stop_app"))
        assert header(app)["state"] == "down" and header(app)["downtime"] == "▼ DOWN 00:01:00"
        assert "a1b2c3d → e5f6e5f" in header(app)["facts"]
        await run_phases(
            pilot, app, ("deploy_code", "verify_files", "db_check", "migrate", "verify_migration")
        )
        assert "db c682ef478e45" in header(app)["facts"] and header(app)["state"] == "down"
        await run_phases(pilot, app, ("start_app",))
        assert header(app)["downtime"] == "downtime 83.5 s" and header(app)["state"] == "up"


# -- failure handling ----------------------------------------------------------------------------------


async def test_failed_migration_offers_retry_and_rollback_not_skip(
    build_app: Callable[..., DeployApp], scripted: ScriptedPhases, journal: JournalView
) -> None:
    scripted.scripts["migrate"] = Script(
        stderr=("ERROR 1205 (HY000): Lock wait timeout exceeded",),
        outcome=PhaseOutcome(PhaseStatus.FAILED, "flask db upgrade exited 1", (("exit", "1"),)),
    )
    app = build_app(config=DEMO_CONFIG)
    async with app.run_test(size=SIZE) as pilot:
        await run_phases(pilot, app, (*BEFORE, "stop_app", "deploy_code", "verify_files", "db_check"))
        await pilot.press("g")
        await through_gates(pilot, app)
        gate = app.screen
        assert isinstance(gate, ConfirmPhase) and gate.has_class("-failed")
        buttons = [b.id for b in gate.query(Button)]
        assert buttons == [
            "confirm-retry",
            "confirm-rollback-button",
            "confirm-no",
        ]  # no skip: it changes the host
        assert "Lock wait timeout" in str(gate.query_one("#confirm-diagnosis").render())
        command = "todobox-deploy rollback --config <your deploy config>"
        assert command in str(gate.query_one("#confirm-rollback").render())
        await pilot.press("s")  # skip is not offered: nothing happens
        await pilot.pause()
        assert app.screen is gate
        await pilot.press("r")  # retry: the destructive step asks again before it runs
        await through_gates(pilot, app)
        assert scripted.runs.count("migrate") == 2
        await pilot.press("b")
        await wait_for(pilot, lambda: isinstance(app.screen, RollbackOffer))
        assert command in str(app.screen.query_one("#rollback-command").render())
        await pilot.press("escape")  # back: nothing launched, the phase stays failed
        await wait_for(pilot, lambda: isinstance(app.screen, WizardScreen))
        assert not app.progress.is_confirmed("migrate")
        await pilot.press("c")  # its options again
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmPhase))
        await pilot.press("b")
        await wait_for(pilot, lambda: isinstance(app.screen, RollbackOffer))
        await pilot.press("q")  # quit to run the rollback
        await wait_for(pilot, lambda: not app.is_running)
    assert app.return_value == 1  # a phase failed
    advised = [e for e in journal if e["event"] == "rollback_advised"]
    assert advised and advised[0]["phase"] == "migrate" and advised[0]["command"] == command


async def test_failed_read_only_phase_skipped_with_a_reason(
    build_app: Callable[..., DeployApp], scripted: ScriptedPhases, journal: JournalView
) -> None:
    scripted.scripts["notify"] = Script(outcome=PhaseOutcome(PhaseStatus.FAILED, "webhook answered 502"))
    app = build_app(operator="dana", config=DEMO_CONFIG)
    async with app.run_test(size=SIZE) as pilot:
        await run_phases(pilot, app, ("backup", "preflight", "rehearsal"))
        await pilot.press("g")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmPhase))
        assert [b.id for b in app.screen.query(Button)] == ["confirm-retry", "confirm-skip", "confirm-no"]
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, SkipReason))
        await pilot.press("enter")  # no reason: refused on the spot
        await pilot.pause()
        assert isinstance(app.screen, SkipReason)
        assert "reason is needed" in str(app.screen.query_one("#skip-error").render())
        await pilot.press(*"told the team by phone")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmPhase))  # the skip is confirmed like any
        assert "SKIPPED: skipped by dana: told the team by phone" in str(
            app.screen.query_one("#confirm-summary").render()
        )
        await pilot.press("y")
        await wait_for(pilot, lambda: isinstance(app.screen, WizardScreen))
        assert app.progress.is_confirmed("notify") and app.progress.next_phase() == "stop_app"
    skipped = [e for e in journal if e["event"] == "phase_skipped"]
    assert skipped == [
        {
            **skipped[0],
            "phase": "notify",
            "reason": "told the team by phone",
            "by": "dana",
            "operator": "dana",
        }
    ]
    confirmed = [e for e in journal if e["event"] == "phase_confirmed" and e["phase"] == "notify"]
    assert confirmed[0]["status"] == "skipped" and confirmed[0]["by_hand"] is False


def test_flow_refuses_to_skip_a_phase_that_changes_the_host(build_app: Callable[..., DeployApp]) -> None:
    flow = build_app().flow
    for phase in ("backup",):  # first in order, changes the host
        with pytest.raises(GateRefused, match="may not be skipped"):
            flow.skip(phase, "in a hurry")
    with pytest.raises(GateRefused, match="confirm phase 'backup' first"):
        flow.skip("notify", "out of order")
    assert {"verify_files", "db_check", "notify"} == SKIPPABLE
    assert all(not flow.phases[p].changes_host for p in SKIPPABLE)


async def test_destructive_step_needs_its_name_typed(
    build_app: Callable[..., DeployApp], scripted: ScriptedPhases, journal: JournalView
) -> None:
    app = build_app(config=DEMO_CONFIG)
    async with app.run_test(size=SIZE) as pilot:
        await run_phases(pilot, app, BEFORE)
        await pilot.press("g")
        await wait_for(pilot, lambda: isinstance(app.screen, DestructiveConfirm))
        await pilot.press(*"stop", "enter")  # not the name: nothing starts
        await pilot.pause()
        assert isinstance(app.screen, DestructiveConfirm) and "stop_app" not in scripted.runs
        assert "That is not stop_app" in str(app.screen.query_one("#destructive-error").render())
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, WizardScreen))
        assert "stop_app" not in scripted.runs and app.progress.running is None
        await pilot.press("g")
        await wait_for(pilot, lambda: isinstance(app.screen, DestructiveConfirm))
        await pilot.press(*"stop_app", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmPhase))
        assert scripted.runs[-1] == "stop_app"
    assert not [e for e in journal if e["event"] == "phase_started" and e["phase"] == "stop_app"][1:]


# -- the sign-off --------------------------------------------------------------------------------------


async def test_signoff_renders_evidence_and_signs(
    build_app: Callable[..., DeployApp], scripted: ScriptedPhases, journal: JournalView, tmp_path: Path
) -> None:
    scripted.manual.add("rehearsal")  # done by hand: never complete
    app = build_app(operator="erin", config=DEMO_CONFIG, session_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await run_phases(pilot, app, ("backup", "preflight", "rehearsal"))
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, SignOffScreen))
        screen = app.screen
        assert isinstance(screen, SignOffScreen)
        doc = screen.query_one("#signoff-doc", Markdown).source
        assert (
            "Test migrations on a development/staging copy of production database: done by hand, no evidence"
            in doc.replace("\\", "")
        )
        assert "∅ no evidence" in doc and "by hand, no evidence" in doc
        assert "NOT COMPLETE" in str(screen.query_one("#signoff-state").render())
        name = screen.query_one("#signoff-name", Input)
        assert name.value == "erin"  # prefilled with the operator
        name.value = "Erin Example"
        await pilot.click("#signoff-sign-button")
        await wait_for(pilot, lambda: (tmp_path / "signoff.json").is_file())
        banner = str(screen.query_one("#signoff-state").render())
        assert "NOT COMPLETE" in banner and "signed by Erin Example" in banner
    signed = [e for e in journal if e["event"] == "signed_off"]
    assert signed[0]["signed_by"] == "Erin Example" and signed[0]["complete"] is False
    assert "NOT COMPLETE" in (tmp_path / "signoff.md").read_text()


# -- the support bundle, help, small terminals, toasts, themes -----------------------------------------


async def test_bundle_key_writes_the_bundle_and_says_where(
    build_app: Callable[..., DeployApp], journal: JournalView, tmp_path: Path
) -> None:
    app = build_app(config=DEMO_CONFIG, session_dir=tmp_path)
    bundle = tmp_path.with_name(tmp_path.name + "-bundle.tar.gz")
    seen: list[str] = []
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await run_and_confirm(pilot, app)
        original = app.notify

        def spy(message: str, **kwargs: Any) -> None:
            seen.append(message)
            original(message, **kwargs)

        app.notify = spy  # type: ignore[method-assign]
        await pilot.press("b")
        await wait_for(pilot, lambda: any(str(bundle) in m for m in seen))
    with tarfile.open(bundle) as tar:
        assert f"{tmp_path.name}/journal.jsonl" in tar.getnames()
    assert [e["path"] for e in journal if e["event"] == "bundle_written"] == [str(bundle)]


async def test_bundle_key_without_a_session_folder_says_so(build_app: Callable[..., DeployApp]) -> None:
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        notices: list[str] = []
        app.notify = lambda message, **kw: notices.append(message)  # type: ignore[method-assign,assignment]
        await pilot.press("b")
        await pilot.pause()
        assert any("No session folder" in n for n in notices)


async def test_help_lists_every_key(build_app: Callable[..., DeployApp]) -> None:
    app = build_app()
    sections = dict(key_sections(DeployApp))
    described = {text for rows in sections.values() for _, text in rows}
    for expected in (
        "Support bundle",
        "Sign-off: Read-only sign-off preview",
        "Quit",
        "Retry",
        "Skip",
        "Rollback",
    ):
        assert any(d.startswith(expected) for d in described), expected
    for title in (
        "Everywhere",
        "Wizard",
        "Log pane",
        "Phase gate (after a phase)",
        "Sign-off",
        "Rollback offer",
    ):
        assert title in sections, title
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        headings = [str(h.render()) for h in app.screen.query(".help-heading")]
        assert headings == ["Navigation", *sections]
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, WizardScreen))
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))


async def test_notifications_never_cover_a_gate(
    build_app: Callable[..., DeployApp], scripted: ScriptedPhases
) -> None:
    app = build_app(config=DEMO_CONFIG)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await pilot.press("g")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmPhase))
        app.notify("a long warning that would sit on top of the evidence", severity="warning", timeout=30)
        await pilot.pause(0.3)
        toasts = list(app.screen.query(Toast))
        assert toasts and all(not t.visible for t in toasts)  # there, but not shown over the gate
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, WizardScreen))
        await pilot.pause(0.3)
        assert any(t.visible for t in app.screen.query(Toast))  # back on the wizard: shown again


CSS_FILES = ("tui/app.tcss",)
_COLOUR = re.compile(r"#[0-9a-fA-F]{3,8}\b|\brgba?\(|\b(red|green|blue|white|black|yellow|grey|gray)\b")


def test_css_uses_theme_variables_only() -> None:
    """Dark and light themes work because the CSS names only theme variables, never a colour."""
    import todobox_deploy
    from todobox_deploy.tui.screens import confirm, gates
    from todobox_deploy.tui.screens.help import HelpScreen as Help
    from todobox_deploy.tui.screens.signoff import SignOffScreen as Sign

    root = Path(todobox_deploy.__file__).parent
    sources = [(root / f).read_text() for f in CSS_FILES]
    sources += [
        c.DEFAULT_CSS for c in (confirm.ConfirmPhase, gates.GateModal, gates.DestructiveConfirm, Help, Sign)
    ]
    for css in sources:
        assert not _COLOUR.search(css), _COLOUR.search(css)


@pytest.mark.parametrize("theme", ["textual-light", "textual-dark"])
async def test_both_themes_render(build_app: Callable[..., DeployApp], theme: str) -> None:
    app = build_app(config=DEMO_CONFIG)
    async with app.run_test(size=(80, 24)) as pilot:
        app.theme = theme
        await pilot.pause()
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, SignOffScreen))
        assert app.current_theme.dark is (theme == "textual-dark")


def test_rollback_offer_rules(build_app: Callable[..., DeployApp], tmp_path: Path) -> None:
    """The rollback is offered once the deploy has touched the app (or the phase itself changes the host,
    the backup's dump aside), with the exact command for the session's config file."""
    config = dataclasses.replace(DEMO_CONFIG, source=tmp_path / "my deploy.toml")
    flow = build_app(config=config, session=FakeHost(config)).flow
    assert rollback_command(flow) == f"todobox-deploy rollback --config '{tmp_path}/my deploy.toml'"
    assert failure_options(flow, "backup", []).rollback is None  # only a dump file so far
    assert failure_options(flow, "notify", []).rollback is None
    assert failure_options(flow, "stop_app", []).rollback is not None  # it may have half-stopped the app
    flow.context = dataclasses.replace(flow.context, app_down_at=DOWN_AT)
    lines = [f"! error {i}" for i in range(10)]
    options = failure_options(flow, "verify_files", lines)
    assert options.rollback is not None and options.skip and options.retry
    assert options.diagnosis == tuple(lines[-6:])


def test_header_facts_wide_and_compact() -> None:
    context = DeployContext(
        commit_before="a" * 40, commit_target="b" * 40, db_revision_before="c682ef478e45", app_down_at=DOWN_AT
    )
    wide = header_facts("h", context, FROZEN, FROZEN)
    assert (wide.facts, wide.elapsed, wide.downtime, wide.state) == (
        "h │ aaaaaaa → bbbbbbb │ db c682ef478e45",
        "elapsed 00:00:00",
        "▼ DOWN 00:01:00",
        "down",
    )
    small = header_facts("h", context, FROZEN, FROZEN, compact=True)
    assert (small.facts, small.elapsed, small.downtime) == (
        "h│aaaaaaa→bbbbbbb│c682ef478e45",
        "00:00:00",
        "DOWN 00:01:00",
    )
    broken = header_facts("h", DeployContext(app_down_at="yesterday"), FROZEN, FROZEN)
    assert broken.state == "down" and broken.downtime == "DOWN since ?"
