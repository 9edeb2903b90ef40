"""SVG snapshots of the cockpit (scripted phases, frozen clock): the docs of the commit, a failed phase with
the rollback offered, the sign-off, the wizard at 80x24. Update with ``--snapshot-update`` after review."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from todobox_deploy.core.context import DeployContext
from todobox_deploy.core.outcome import PhaseOutcome, PhaseStatus
from todobox_deploy.tui.app import DeployApp
from todobox_deploy.tui.screens.confirm import ConfirmPhase
from todobox_deploy.tui.screens.signoff import SignOffScreen

from .conftest import DEMO_CONFIG, Script, ScriptedPhases
from .fakes import FakeHost, make_clone, with_local_repo
from .test_wizard import run_and_confirm, through_gates, wait_for, wizard

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
        await wait_for(
            pilot, lambda: "Migration fix summary" in wizard(app).query_one("#details-body").source
        )  # type: ignore[attr-defined]
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
        for _ in (
            "backup",
            "preflight",
            "rehearsal",
            "notify",
            "stop_app",
            "deploy_code",
            "verify_files",
            "db_check",
        ):
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
        for _ in (
            "backup",
            "preflight",
            "rehearsal",
            "notify",
            "stop_app",
            "deploy_code",
            "verify_files",
            "db_check",
        ):
            await run_and_confirm(pilot, app)
        await settled(pilot)

    assert snap_compare(app, terminal_size=SMALL, run_before=to_downtime)
