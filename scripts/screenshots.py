"""Regenerate the README's screenshots from a real run of the wizard against a fresh sandbox.

    python scripts/screenshots.py [--out screenshots] [--users 20000]

Brings up a throwaway sandbox in a temp dir and drives the wizard headless with Textual's Pilot through the
real engine over SSH, saving SVGs on the way; then takes the sandbox down. Every screen is a real one:

- the start, then monitoring (``m``): the app log's tail already holds the bug's ``Unknown column`` lines,
  which the checklist's Common Issues match (the notification);
- a verified backup, the pre-flight, the rehearsal on a copy (shot while it streams), notify, the stop (its
  typed confirmation), steps 2-3, step 4's evidence; the log search, the fix's document, monitoring, the
  keys, the sign-off preview, the session-wide search (``ctrl+f``), the wizard at 80x24;
- then step 4 confirmed and the migration started while another client's open transaction holds a
  metadata lock on the migrated table: the DDL gives up after ``[migration] lock_wait_timeout`` (30 s)
  and the gate shows the failure with the rollback offered. Nothing is rolled back or retried.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pymysql
from textual.pilot import Pilot
from textual.widgets import Input, OptionList
from textual.widgets._toast import Toast

from todobox_deploy.checklist import CHECKLIST
from todobox_deploy.checklist.progress import ACCEPTABLE
from todobox_deploy.config import DeployConfig, load_config
from todobox_deploy.core.envfile import password_in_env_text
from todobox_deploy.core.outcome import PhaseStatus
from todobox_deploy.engine.flow import DeployFlow
from todobox_deploy.engine.phases import PHASES
from todobox_deploy.engine.session import DeploySession
from todobox_deploy.journal.journal import Journal
from todobox_deploy.remote.connection import SshConnection
from todobox_deploy.sandbox.manager import SandboxInfo, sandbox_down, sandbox_up
from todobox_deploy.tui.app import DeployApp, make_app
from todobox_deploy.tui.cockpit import cockpit_for
from todobox_deploy.tui.screens.ask import AskScreen
from todobox_deploy.tui.screens.confirm import ConfirmPhase
from todobox_deploy.tui.screens.gates import DestructiveConfirm
from todobox_deploy.tui.screens.monitor import MonitorScreen
from todobox_deploy.tui.screens.search import SessionSearchScreen
from todobox_deploy.tui.screens.wizard import WizardScreen
from todobox_deploy.tui.widgets.footer import ESSENTIAL, DeployFooter

SIZE = (140, 42)
SMALL = (80, 24)
STREAMING = "rehearsal"  # the phase shot while it runs (the longest before the stop)
SEARCH = "api_token"  # in the pre-flight, the rehearsal, steps 3-4 and the app log


async def _until(pilot: Pilot[Any], predicate: Callable[[], bool], timeout: float = 300) -> None:
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return
        await pilot.pause(0.05)
    raise TimeoutError("the wizard did not reach the expected state")


def _wizard(app: DeployApp) -> WizardScreen:
    assert app.wizard is not None
    return app.wizard


@contextmanager
def _metadata_lock(config: DeployConfig, info: SandboxInfo) -> Iterator[int]:
    """Another client of the app's database with an open transaction that has read the migrated table:
    it holds a metadata lock until it ends (as a forgotten console session would). Yields its id."""
    password = password_in_env_text(Path(config.app.env_file or "").read_text(), "DATABASE_URL")
    conn = pymysql.connect(
        host="127.0.0.1",
        port=info.db_port,
        user=config.database.user,
        password=password or "",
        database=info.db_name,
    )
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT CONNECTION_ID()")
            row = cur.fetchone()
            cur.execute("BEGIN")
            cur.execute(f"SELECT * FROM `{config.migration.table}` LIMIT 1")
            cur.fetchall()
        yield int(row[0]) if row else -1
    finally:
        conn.rollback()
        conn.close()


class Shots:
    """Drives one app through the run, saving SVGs into ``out``."""

    def __init__(self, app: DeployApp, pilot: Pilot[Any], out: Path) -> None:
        self.app, self.pilot, self.out = app, pilot, out

    def shot(self, name: str) -> None:
        self.app.save_screenshot(filename=f"{name}.svg", path=str(self.out))
        print(f"wrote {self.out / name}.svg")

    async def until(self, predicate: Callable[[], bool], timeout: float = 300) -> None:
        await _until(self.pilot, predicate, timeout)

    async def quiet(self, seconds: float = 0.3) -> None:
        """No toasts left over from earlier steps, and the screen settled."""
        self.app.clear_notifications()
        await self.pilot.pause(seconds)

    async def common_issue(self) -> None:
        """Monitoring at the start: the tails begin with the app log's last lines, and the bug's
        ``Unknown column`` line there matches the checklist's Common Issues row."""
        app, cockpit = self.app, cockpit_for(self.app)
        await self.pilot.press("m")
        await self.until(lambda: cockpit.last_issue is not None, timeout=60)
        await self.until(lambda: bool(app.screen.query(Toast)), timeout=20)
        await self.pilot.pause(0.5)
        match = cockpit.last_issue
        assert match is not None and match.row.key == "unknown_column", match
        self.shot("common_issue")
        await self.pilot.press("escape")  # back to the wizard; the tails go on
        await self.until(lambda: isinstance(app.screen, WizardScreen))
        await self.quiet()

    async def run_phase(self, phase: str) -> None:
        """Run the next phase through its gates and confirm it (it must have succeeded)."""
        app, pilot = self.app, self.pilot
        gates = (ConfirmPhase, AskScreen, DestructiveConfirm)
        await pilot.press("g")
        if phase == STREAMING:
            await self.streaming(phase)
        await self.until(lambda: isinstance(app.screen, gates))
        if isinstance(app.screen, AskScreen):  # migrate online? keep the checklist's order
            await pilot.press("n")
            await self.until(lambda: isinstance(app.screen, (ConfirmPhase, DestructiveConfirm)))
        if isinstance(app.screen, DestructiveConfirm):  # the stop: type its name
            self.shot("destructive_confirm")
            await pilot.press(*app.screen.phase_id, "enter")
            await self.until(lambda: isinstance(app.screen, ConfirmPhase))
        status = app.progress.status[phase]
        if status not in ACCEPTABLE:
            raise RuntimeError(f"{phase} ended {status.value}: {app.progress.outcomes[phase].summary}")
        await pilot.press("y")
        await self.until(lambda: isinstance(app.screen, WizardScreen))

    async def streaming(self, phase: str) -> None:
        """The tree and the log while ``phase`` runs: shot once it has streamed a few lines."""
        app, pane = self.app, _wizard(self.app).log_pane

        def streamed() -> bool:
            return app.progress.running != phase or len(pane.window(phase)) >= 8

        await self.until(streamed)
        app.clear_notifications()  # the last phase's outcome and the open items: they cover the log
        await self.until(lambda: app.progress.running != phase or not app.screen.query(Toast))
        if app.progress.running != phase:
            raise RuntimeError(f"{phase} ended before it could be shot running")
        self.shot("phase_running")

    async def tour(self) -> None:
        """Step 4's evidence, then the cockpit's screens over the session so far."""
        app, pilot = self.app, self.pilot
        await pilot.press("g")  # 4. Check Database Before Migration
        await self.until(lambda: isinstance(app.screen, ConfirmPhase))
        await pilot.pause(0.5)
        self.shot("confirm_db_check")
        await pilot.press("n")
        await self.until(lambda: isinstance(app.screen, WizardScreen))
        await self.quiet(0.5)
        self.shot("wizard_db_check")
        await pilot.press("slash")
        await pilot.press(*"c682ef478e45")
        await pilot.press("enter")
        await pilot.pause(0.5)
        self.shot("log_search")
        await pilot.press("escape")
        _wizard(app).checklist_tree.select_id("predeploy.read_summary")  # the fix's own document
        await pilot.pause(2.0)
        self.shot("docs_view")
        await pilot.press("m")  # monitoring: live tails of the app log and MySQL's error log
        await self.until(lambda: isinstance(app.screen, MonitorScreen))
        await self.quiet(2.0)
        self.shot("monitoring")
        await pilot.press("escape")
        await pilot.pause(0.3)
        await pilot.press("question_mark")
        await pilot.pause(0.5)
        self.shot("keys")
        await pilot.press("escape")
        await pilot.pause(0.3)
        await pilot.press("s")
        await pilot.pause(0.5)
        self.shot("signoff_preview")
        await pilot.press("escape")
        await self.until(lambda: isinstance(app.screen, WizardScreen))

    async def session_search(self) -> None:
        """``ctrl+f``: every phase's transcript, the checks and the tails searched for SEARCH."""
        app, pilot = self.app, self.pilot
        await pilot.press("ctrl+f")
        await self.until(lambda: isinstance(app.screen, SessionSearchScreen))
        screen = app.screen
        assert isinstance(screen, SessionSearchScreen)
        screen.query_one(Input).value = ""
        await pilot.press(*SEARCH, "enter")
        results = screen.query_one(OptionList)

        def listed() -> bool:  # every hit and each log's heading on the list
            sources = {hit.source for hit in screen.hits}
            return screen.done and results.option_count >= len(screen.hits) + len(sources)

        await self.until(listed)
        sources = {hit.source for hit in screen.hits}
        assert screen.query_text == SEARCH and len(sources) >= 3, sources
        await self.quiet()
        self.shot("session_search")
        await pilot.press("escape")
        await self.until(lambda: isinstance(app.screen, WizardScreen))

    async def small(self) -> None:
        """The wizard at 80x24 during the downtime: the header and the essential keys must fit."""
        app, pilot = self.app, self.pilot
        wizard = _wizard(app)
        wizard.checklist_tree.select_id(CHECKLIST.find_phase("db_check").id)  # type: ignore[union-attr]
        wizard.checklist_tree.focus()  # back from the docs to the next step
        await pilot.resize_terminal(*SMALL)
        await self.quiet(0.5)
        footer = _wizard(app).query_one(DeployFooter)
        for action in ESSENTIAL:
            span = footer.region_of(action)
            assert span is not None and span[1] <= SMALL[0], (action, span)
        self.shot("wizard_80x24")
        await pilot.resize_terminal(*SIZE)
        await pilot.pause(0.3)

    async def failed_migration(self, config: DeployConfig, info: SandboxInfo) -> None:
        """Step 4 confirmed; the migration started while a metadata lock is held: it fails after the stop,
        and the gate offers the rollback."""
        app, pilot = self.app, self.pilot
        _wizard(app).checklist_tree.select_id(CHECKLIST.find_phase("db_check").id)  # type: ignore[union-attr]
        await pilot.press("c")
        await self.until(lambda: isinstance(app.screen, ConfirmPhase))
        await pilot.press("y")
        await self.until(lambda: isinstance(app.screen, WizardScreen))
        with _metadata_lock(config, info) as holder:
            print(f"session {holder} holds a metadata lock on `{config.migration.table}`; migrating")
            await pilot.press("g")
            await self.until(lambda: isinstance(app.screen, DestructiveConfirm))
            await pilot.press(*"migrate", "enter")
            await self.until(lambda: isinstance(app.screen, ConfirmPhase), timeout=600)
        gate = app.screen
        assert isinstance(gate, ConfirmPhase)
        outcome = app.progress.outcomes["migrate"]
        if outcome.status is not PhaseStatus.FAILED or gate.options.rollback is None:
            raise RuntimeError(f"expected a failed migration with the rollback offered: {outcome.summary}")
        self.app.clear_notifications()  # the wizard's toasts, behind the gate (the gate hides its own)
        _wizard(app).query("ToastHolder").remove()
        await pilot.pause(0.5)
        self.shot("failed_rollback")
        await pilot.press("n")
        await self.until(lambda: isinstance(app.screen, WizardScreen))

    async def run(self, config: DeployConfig, info: SandboxInfo) -> None:
        app = self.app
        await self.until(lambda: app.wizard is not None and app.screen is app.wizard)
        await self.until(lambda: app.wizard is not None and app.wizard.details_body is not None)
        await self.pilot.pause(0.5)
        self.shot("wizard_start")
        await self.common_issue()
        order = app.progress.order
        for phase in order[: order.index("db_check")]:  # backup ... 3. verify files, for real
            await self.run_phase(phase)
        await self.tour()
        await self.session_search()
        await self.small()
        await self.failed_migration(config, info)


async def _drive(app: DeployApp, out: Path, config: DeployConfig, info: SandboxInfo) -> None:
    async with app.run_test(size=SIZE, notifications=True) as pilot:  # toasts shown
        await Shots(app, pilot, out).run(config, info)


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
                asyncio.run(_drive(make_app(flow), args.out, config, info))
            finally:
                flow.close(3, "screenshots taken")
                session.close()
        finally:
            sandbox_down(directory)


if __name__ == "__main__":
    main()
