"""Regenerate the README's screenshots from a real run of the wizard against a fresh sandbox.

    python scripts/screenshots.py [--out screenshots] [--users 20000]

Brings up a throwaway sandbox in a temp dir, drives the wizard headless with Textual's Pilot through the
real engine over SSH (a verified backup, the pre-flight, the rehearsal on a copy, notify, steps 1-3) up to
step 4's evidence, saves SVGs, and takes the sandbox down. Nothing past step 4 runs: no migration.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from todobox_deploy.checklist import CHECKLIST
from todobox_deploy.checklist.progress import ACCEPTABLE
from todobox_deploy.config import load_config
from todobox_deploy.engine.flow import DeployFlow
from todobox_deploy.engine.phases import PHASES
from todobox_deploy.engine.session import DeploySession
from todobox_deploy.journal.journal import Journal
from todobox_deploy.remote.connection import SshConnection
from todobox_deploy.sandbox.manager import sandbox_down, sandbox_up
from todobox_deploy.tui.app import DeployApp, make_app
from todobox_deploy.tui.screens.ask import AskScreen
from todobox_deploy.tui.screens.confirm import ConfirmPhase
from todobox_deploy.tui.screens.gates import DestructiveConfirm
from todobox_deploy.tui.screens.wizard import WizardScreen

SIZE = (140, 42)


async def _until(pilot: Pilot[Any], predicate: Callable[[], bool], timeout: float = 300) -> None:
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return
        await pilot.pause(0.05)
    raise TimeoutError("the wizard did not reach the expected state")


async def _drive(app: DeployApp, out: Path) -> None:
    def shot(name: str) -> None:
        app.save_screenshot(filename=f"{name}.svg", path=str(out))
        print(f"wrote {out / name}.svg")

    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.5)
        shot("wizard_start")
        order = app.progress.order
        for phase in order[: order.index("db_check")]:  # backup ... 3. verify files, on the sandbox for real
            await pilot.press("g")
            await _until(pilot, lambda: isinstance(app.screen, (ConfirmPhase, AskScreen, DestructiveConfirm)))
            if isinstance(app.screen, AskScreen):  # migrate online? keep the checklist's order
                await pilot.press("n")
                await _until(pilot, lambda: isinstance(app.screen, (ConfirmPhase, DestructiveConfirm)))
            if isinstance(app.screen, DestructiveConfirm):  # the stop: type its name
                shot("destructive_confirm")
                await pilot.press(*app.screen.phase_id, "enter")
                await _until(pilot, lambda: isinstance(app.screen, ConfirmPhase))
            status = app.progress.status[phase]
            if status not in ACCEPTABLE:
                raise RuntimeError(f"{phase} ended {status.value}: {app.progress.outcomes[phase].summary}")
            await pilot.press("y")
            await _until(pilot, lambda: isinstance(app.screen, WizardScreen))
        await pilot.press("g")  # 4. Check Database Before Migration
        await _until(pilot, lambda: isinstance(app.screen, ConfirmPhase))
        await pilot.pause(0.5)
        shot("confirm_db_check")
        await pilot.press("n")
        await _until(pilot, lambda: isinstance(app.screen, WizardScreen))
        app.clear_notifications()
        await pilot.pause(0.5)
        shot("wizard_db_check")
        await pilot.press("slash")
        await pilot.press(*"c682ef478e45")
        await pilot.press("enter")
        await pilot.pause(0.5)
        shot("log_search")
        await pilot.press("escape")
        wizard = app.wizard
        assert wizard is not None
        wizard.checklist_tree.select_id("predeploy.read_summary")  # the fix's own document, from the host
        await pilot.pause(2.0)
        shot("docs_view")
        await pilot.press("m")  # monitoring: live tails of the app log and MySQL's error log
        await pilot.pause(2.0)
        shot("monitoring")
        await pilot.press("escape")
        await pilot.pause(0.3)
        await pilot.press("question_mark")
        await pilot.pause(0.5)
        shot("keys")
        await pilot.press("escape")
        await pilot.pause(0.3)
        await pilot.press("s")
        await pilot.pause(0.5)
        shot("signoff_preview")


def main() -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=fmt)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "screenshots")
    parser.add_argument("--users", type=int, default=20_000)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="todobox-shots-") as tmp:
        directory = Path(tmp) / "sandbox"
        info = sandbox_up(directory, users=args.users)
        try:
            config = load_config(info.config)
            conn = SshConnection(config.target, pinned_known_hosts=Path(tmp) / "pins")
            session = DeploySession(config, connection=conn)
            flow = DeployFlow(
                CHECKLIST,
                PHASES,
                session=session,
                operator="alice",
                host=config.target.host,
                journal=Journal(Path(tmp) / "journal.jsonl", operator="alice", host=config.target.host),
                transcript_dir=Path(tmp) / "t",
            )
            try:
                asyncio.run(_drive(make_app(flow), args.out))
            finally:
                flow.close(3, "screenshots taken")
                session.close()
        finally:
            sandbox_down(directory)


if __name__ == "__main__":
    main()
