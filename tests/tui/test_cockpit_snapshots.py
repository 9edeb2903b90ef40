"""SVG snapshots of the cockpit (scripted phases, frozen clock): the docs of the commit, a failed phase with
the rollback offered, the sign-off, the wizard at 80x24, a phase while it streams, a common issue matched in
a phase's output, the session-wide search. Update with ``--snapshot-update`` after review."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, OptionList
from textual.widgets._toast import Toast

from todobox_deploy.core.context import DeployContext
from todobox_deploy.core.outcome import PhaseOutcome, PhaseStatus
from todobox_deploy.tui.app import DeployApp
from todobox_deploy.tui.cockpit import cockpit_for
from todobox_deploy.tui.screens.confirm import ConfirmPhase
from todobox_deploy.tui.screens.search import SessionSearchScreen
from todobox_deploy.tui.screens.signoff import SignOffScreen

from .conftest import DEMO_CONFIG, Script, ScriptedPhases, wait_for
from .fakes import FakeHost, make_clone, with_local_repo
from .test_wizard import run_and_confirm, through_gates, wizard

SnapCompare = Callable[..., bool]
BIG, SMALL = (120, 36), (80, 24)


async def settled(pilot: Pilot[Any]) -> None:
    pilot.app.clear_notifications()  # toasts come and go with timing
    await pilot.pause(0.2)


def test_docs_view(
    snap_compare: SnapCompare,
    build_app: Callable[..., DeployApp],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """MIGRATION_FIX_SUMMARY.md from the local clone at the target: same commit as the clone's HEAD, the
    commit and migration file between the host's HEAD and the target, the document rendered (escape
    sequences shown inert)."""
    clone = make_clone(tmp_path / "clone")
    monkeypatch.chdir(tmp_path)  # a relative clone path: the same text every run
    config = with_local_repo(Path("clone"))
    context = DeployContext(commit_before=clone.base, commit_target=clone.fix)
    app = build_app(config=config, session=FakeHost(config), context=context)

    async def show_docs(pilot: Pilot[Any]) -> None:
        wizard(app).checklist_tree.select_id("predeploy.read_summary")
        await wait_for(pilot, lambda: "Migration fix summary" in wizard(app).details_shown)
        await pilot.press("z")  # the details panel zoomed, to read the document
        await pilot.pause(0.1)
        wizard(app).query_one("#details").scroll_to(y=8, animate=False)
        await settled(pilot)

    assert snap_compare(app, terminal_size=BIG, run_before=show_docs)


def test_failed_phase_with_rollback_offered(
    snap_compare: SnapCompare, build_app: Callable[..., DeployApp], scripted: ScriptedPhases
) -> None:
    """At 80x24: the migration failed after the stop; the gate shows the diagnosis, retry, the rollback
    command, not yet; no notification covers it."""
    scripted.scripts["stop_app"] = Script(establish={"app_down_at": "2026-11-24T09:29:00.000+00:00"})
    scripted.scripts["migrate"] = Script(
        lines=3,
        stderr=("sqlalchemy.exc.OperationalError: (1205, 'Lock wait timeout exceeded')",),
        outcome=PhaseOutcome(
            PhaseStatus.FAILED,
            "flask db upgrade exited 1: the schema is unchanged (d1f2e3c4b5a6 not applied)",
            (("exit status", "1"), ("alembic_version", "c682ef478e45"), ("user.api_token", "missing")),
        ),
    )
    app = build_app(config=DEMO_CONFIG)

    async def fail_migration(pilot: Pilot[Any]) -> None:
        while app.progress.next_phase() != "migrate":  # every phase up to the migration
            await run_and_confirm(pilot, app)
        await pilot.press("g")
        await through_gates(pilot, app)
        assert isinstance(app.screen, ConfirmPhase)
        app.clear_notifications()
        wizard(app).query(
            "ToastHolder"
        ).remove()  # the wizard's own toasts (behind the gate) expire with timing
        app.notify("this toast must not cover the gate", severity="error", timeout=60)
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=SMALL, run_before=fail_migration)


def test_signoff_with_evidence(
    snap_compare: SnapCompare, build_app: Callable[..., DeployApp], scripted: ScriptedPhases
) -> None:
    """The sign-off after a run with one phase done by hand: NOT COMPLETE, the problems first, each phase
    with how it was confirmed, each item with its verdict and evidence."""
    scripted.manual.add("rehearsal")
    scripted.scripts["stop_app"] = Script(establish={"app_down_at": "2026-11-24T09:29:00.000+00:00"})
    scripted.scripts["start_app"] = Script(establish={"app_up_at": "2026-11-24T09:30:23.500+00:00"})
    app = build_app(operator="erin", config=DEMO_CONFIG)

    async def run_all(pilot: Pilot[Any]) -> None:
        while app.progress.next_phase() != "post_verify":
            await run_and_confirm(pilot, app)
        await pilot.press("g")  # the last phase: its confirmation opens the sign-off
        await through_gates(pilot, app)
        await pilot.press("y")
        await wait_for(pilot, lambda: isinstance(app.screen, SignOffScreen))
        await settled(pilot)

    assert snap_compare(app, terminal_size=BIG, run_before=run_all)


def test_wizard_80x24(
    snap_compare: SnapCompare, build_app: Callable[..., DeployApp], scripted: ScriptedPhases
) -> None:
    """The wizard at 80x24 during the downtime: the header with the red downtime clock, ^q Quit, s Sign-off
    and ? Keys first in the footer."""
    scripted.scripts["preflight"] = Script(
        establish={"commit_before": "a1b2c3d4" * 5, "commit_target": "e5f6a7b8" * 5}
    )
    scripted.scripts["db_check"] = Script(establish={"db_revision_before": "c682ef478e45"})
    scripted.scripts["stop_app"] = Script(establish={"app_down_at": "2026-11-24T09:29:00.000+00:00"})
    app = build_app(config=DEMO_CONFIG)

    async def to_downtime(pilot: Pilot[Any]) -> None:
        while app.progress.next_phase() != "migrate":  # every phase up to the migration
            await run_and_confirm(pilot, app)
        await settled(pilot)

    assert snap_compare(app, terminal_size=SMALL, run_before=to_downtime)


UNKNOWN_COLUMN = (
    "sqlalchemy.exc.OperationalError: (pymysql.err.OperationalError) "
    "(1054, \"Unknown column 'user.api_token' in 'field list'\")"
)


async def tick_manual_items(pilot: Pilot[Any]) -> None:
    await pilot.press("up", "space", "up", "space")  # the two "Read ..." items before the backup


def test_phase_running(
    snap_compare: SnapCompare, build_app: Callable[..., DeployApp], scripted: ScriptedPhases
) -> None:
    """The backup confirmed, the pre-flight streaming: its node running in the tree (◐), its lines in the
    log pane, the status line's "running preflight", esc Cancel phase in the footer."""
    scripted.scripts["preflight"] = Script(
        lines=40, stderr=("warning: the app's log is 2.1 GiB",), block_until_cancel=True
    )
    app = build_app(config=DEMO_CONFIG)

    async def streaming(pilot: Pilot[Any]) -> None:
        await tick_manual_items(pilot)
        await run_and_confirm(pilot, app)
        await pilot.press("g")
        await wait_for(pilot, lambda: len(wizard(app).log_pane.window("preflight")) == 41)
        assert app.progress.running == "preflight"
        await settled(pilot)

    assert snap_compare(app, terminal_size=BIG, run_before=streaming)


def test_common_issue_matched_in_phase_output(
    snap_compare: SnapCompare, build_app: Callable[..., DeployApp], scripted: ScriptedPhases
) -> None:
    """The pre-flight's import probe prints the bug's Unknown column error while it runs: the Common
    Issues row's notification (the line, the action, what i does), the line in the log pane."""
    scripted.scripts["preflight"] = Script(lines=6, stderr=(UNKNOWN_COLUMN,), block_until_cancel=True)
    app = build_app(config=DEMO_CONFIG)

    async def matched(pilot: Pilot[Any]) -> None:
        await tick_manual_items(pilot)
        await run_and_confirm(pilot, app)
        app.clear_notifications()  # the backup's outcome
        await pilot.press("g")
        await wait_for(pilot, lambda: cockpit_for(app).last_issue is not None)
        await wait_for(pilot, lambda: len(app.screen.query(Toast)) == 1)
        match = cockpit_for(app).last_issue
        assert match is not None and match.row.key == "unknown_column" and match.source == "preflight"
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=BIG, run_before=matched)


def test_session_search_results(
    snap_compare: SnapCompare, build_app: Callable[..., DeployApp], scripted: ScriptedPhases
) -> None:
    """ctrl+f after four phases: "api_token" found in three of their logs, the results listed under each
    phase's title with their line numbers, the count and the logs in the state line."""
    scripted.scripts["preflight"] = Script(
        lines=3, stderr=("c682ef478e45 -> d1f2e3c4b5a6 (head), fix api_token column",)
    )
    scripted.scripts["rehearsal"] = Script(
        lines=5,
        stderr=(
            "INFO  [alembic.runtime.migration] Running upgrade c682ef478e45 -> d1f2e3c4b5a6, fix api_token",
            "INFO  [alembic.runtime.migration] user.api_token added, ix_user_api_token created",
        ),
    )
    scripted.scripts["notify"] = Script(lines=2, stderr=("posted: deploying the api_token fix at 09:30",))
    app = build_app(config=DEMO_CONFIG)

    async def searched(pilot: Pilot[Any]) -> None:
        for _ in ("backup", "preflight", "rehearsal", "notify"):
            await run_and_confirm(pilot, app)
        await pilot.press("ctrl+f")
        await wait_for(pilot, lambda: isinstance(app.screen, SessionSearchScreen))
        screen = app.screen
        assert isinstance(screen, SessionSearchScreen)
        await pilot.press(*"api_token", "enter")
        results = screen.query_one(OptionList)
        await wait_for(pilot, lambda: screen.done and results.option_count == 4 + 3)  # 4 hits, 3 headings
        assert screen.query_one(Input).value == "api_token"
        assert [h.source for h in screen.hits] == ["preflight", "rehearsal", "rehearsal", "notify"]
        await settled(pilot)

    assert snap_compare(app, terminal_size=BIG, run_before=searched)
