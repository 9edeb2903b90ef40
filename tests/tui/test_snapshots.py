"""SVG snapshots of the wizard (scripted phases, frozen clock, 120x36). Update with ``--snapshot-update``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.pilot import Pilot

from todobox_deploy.checklist import PHASES
from todobox_deploy.tui.app import DeployApp
from todobox_deploy.tui.screens.confirm import ConfirmPhase
from todobox_deploy.tui.screens.signoff import SignOffScreen

from .conftest import DEMO_CONFIG, Script, ScriptedPhases, wait_for
from .test_wizard import through_gates

SIZE = (120, 36)
SnapCompare = Callable[..., bool]


def test_wizard_initial(snap_compare: SnapCompare, build_app: Callable[..., DeployApp]) -> None:
    """The wizard at start: tree with every section, the first phase selected, its body and empty log."""

    async def settle(pilot: Pilot[Any]) -> None:
        await pilot.pause(0.2)

    assert snap_compare(build_app(config=DEMO_CONFIG), terminal_size=SIZE, run_before=settle)


def test_confirm_after_phase(
    snap_compare: SnapCompare, build_app: Callable[..., DeployApp], scripted: ScriptedPhases
) -> None:
    """Two manual items ticked; backup finished with a stderr line; the modal shows the evidence."""
    scripted.scripts["backup"] = Script(lines=120, stderr=("mysqldump: [Warning] Using a password",))

    async def run_backup(pilot: Pilot[Any]) -> None:
        await pilot.press("up", "space", "up", "space")  # tick the two "Read ..." items first
        await pilot.press("g")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmPhase))
        pilot.app.clear_notifications()
        await pilot.pause(0.2)

    assert snap_compare(build_app(config=DEMO_CONFIG), terminal_size=SIZE, run_before=run_backup)


def test_signoff_complete(snap_compare: SnapCompare, build_app: Callable[..., DeployApp]) -> None:
    """Every phase run and confirmed: the read-only sign-off, NOT COMPLETE (the post-deployment items have
    no evidence), the name prefilled for the signature."""

    async def run_all(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, DeployApp)
        for _ in PHASES:
            await pilot.press("g")
            await through_gates(pilot, app)
            await pilot.press("y")
            await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmPhase))
        await wait_for(pilot, lambda: isinstance(app.screen, SignOffScreen))
        app.clear_notifications()  # toasts come and go with timing; keep the snapshot stable
        await pilot.pause(0.2)

    assert snap_compare(build_app(config=DEMO_CONFIG), terminal_size=SIZE, run_before=run_all)
