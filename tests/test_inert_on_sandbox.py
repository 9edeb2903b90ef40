"""A commit message full of escape sequences and markup, pushed to the sandbox's origin, reaches step 2's
evidence (``git log`` in the live output, a new migration file name in the facts) inert: in the wizard's
log pane, confirmation and details, in the plain front end's output and in the transcript."""

from __future__ import annotations

import dataclasses
import io
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from tui.conftest import wait_for
from tui.test_inert_text import CONTROL, screen_lines, shows
from tui.test_wizard import wizard

from todobox_deploy.checklist import CHECKLIST
from todobox_deploy.config import load_config
from todobox_deploy.core.outcome import PhaseOutcome, PhaseStatus
from todobox_deploy.core.text import inert
from todobox_deploy.engine.flow import DeployFlow
from todobox_deploy.engine.phases import PHASES
from todobox_deploy.engine.phases.spec import PhaseCall
from todobox_deploy.engine.session import DeploySession
from todobox_deploy.journal.journal import Journal
from todobox_deploy.plain import Console, PlainRun
from todobox_deploy.remote.connection import SshConnection
from todobox_deploy.sandbox.manager import SandboxInfo, sandbox_restore
from todobox_deploy.tui.app import make_app
from todobox_deploy.tui.screens.confirm import ConfirmPhase
from todobox_deploy.tui.screens.gates import DestructiveConfirm
from todobox_deploy.tui.screens.wizard import WizardScreen

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

SUBJECT = (
    "\x1b]0;TITLE\x07\x1b[2J\x1b[H\x1b[32mALL CHECKS PASSED\x1b[0m [bold]b[/bold] [red]r[/red] "
    "3 checks FAILED\rALL OK"
)
FILE_NAME = "[bold]evil[red] **x** `c`.txt"  # no "/" in a file name: no closing tag
SHOWN_SUBJECT = inert(SUBJECT)
BEFORE = ("backup", "preflight", "rehearsal", "notify", "stop_app")  # scripted: nothing changes on the host


def _git(*args: str, cwd: Path) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.fixture
def hostile_origin(sandbox_reset: SandboxInfo, tmp_path: Path) -> Iterator[SandboxInfo]:
    """The sandbox in its bug state, with a hostile commit on top of origin's master; restored after."""
    assert sandbox_reset.app_dir is not None
    origin = _git("remote", "get-url", "origin", cwd=sandbox_reset.app_dir)
    clone = tmp_path / "clone"
    _git("clone", "-q", origin, str(clone), cwd=tmp_path)
    (clone / "migrations" / FILE_NAME).write_text("hostile\n")
    _git("add", "-A", cwd=clone)
    _git("-c", "user.name=dev", "-c", "user.email=dev@x.invalid", "commit", "-q", "-m", SUBJECT, cwd=clone)
    _git("push", "-q", "origin", "HEAD:master", cwd=clone)
    try:
        yield sandbox_reset
    finally:
        sandbox_restore(sandbox_reset.directory)


def _ok(call: PhaseCall) -> PhaseOutcome:
    return PhaseOutcome(PhaseStatus.OK, "scripted")


def _flow(info: SandboxInfo, tmp_path: Path) -> tuple[DeployFlow, DeploySession]:
    config = load_config(info.config)
    session = DeploySession(
        config, connection=SshConnection(config.target, pinned_known_hosts=tmp_path / "pins")
    )
    phases = {
        p: dataclasses.replace(s, body=_ok if p in BEFORE else None, needs=()) for p, s in PHASES.items()
    }
    phases["deploy_code"] = PHASES["deploy_code"]
    flow = DeployFlow(
        CHECKLIST,
        phases,
        session=session,
        operator="erin",
        host=config.target.host,
        journal=Journal(tmp_path / "journal.jsonl", operator="erin", host=config.target.host),
        transcript_dir=tmp_path / "transcripts",
    )
    return flow, session


def _check_transcript(tmp_path: Path) -> None:
    text = (tmp_path / "transcripts" / "deploy_code.log").read_text()
    assert not CONTROL.search(text.replace("\n", ""))
    assert re.search(r"\d\d:\d\d:\d\d   [0-9a-f]{7,} " + re.escape(SHOWN_SUBJECT) + "\n", text)


def test_plain_front_end_shows_the_commit_inert(hostile_origin: SandboxInfo, tmp_path: Path) -> None:
    flow, session = _flow(hostile_origin, tmp_path)
    out = io.StringIO()
    try:
        PlainRun(flow, Console(yes=True, stdin=io.StringIO(""), stdout=out)).run()  # stops at step 3: by hand
    finally:
        flow.close(3, "the test ended after step 2")
        session.close()
    text = out.getvalue()
    assert flow.progress.status["deploy_code"] is PhaseStatus.OK, text
    assert not CONTROL.search(text.replace("\n", ""))
    assert re.search(r"out\| [0-9a-f]{7,} " + re.escape(SHOWN_SUBJECT) + "\n", text)  # git log, live
    assert re.search(r"new migration files +" + re.escape(FILE_NAME) + ", ", text)  # the evidence
    _check_transcript(tmp_path)


async def test_wizard_shows_the_commit_inert(hostile_origin: SandboxInfo, tmp_path: Path) -> None:
    flow, session = _flow(hostile_origin, tmp_path)
    app = make_app(flow)
    try:
        async with app.run_test(size=(220, 60)) as pilot:
            for phase in (*BEFORE, "deploy_code"):
                assert app.progress.next_phase() == phase
                await pilot.press("g")
                await wait_for(
                    pilot, lambda: isinstance(app.screen, (ConfirmPhase, DestructiveConfirm)), timeout=60
                )
                if isinstance(app.screen, DestructiveConfirm):  # the stop asks for its name first
                    await pilot.press(*phase, "enter")
                    await wait_for(pilot, lambda: isinstance(app.screen, ConfirmPhase), timeout=60)
                if phase == "deploy_code":  # the confirmation: the file name in the evidence, literally
                    outcome = app.progress.outcomes[phase]
                    assert outcome.status is PhaseStatus.OK, outcome.summary
                    await wait_for(pilot, lambda: shows(app, FILE_NAME))
                    await pilot.press("n")
                else:
                    await pilot.press("y")
                await wait_for(pilot, lambda: isinstance(app.screen, WizardScreen))
            pane = wizard(app).log_pane
            await wait_for(pilot, lambda: pane.pending_count == 0)
            window = pane.window("deploy_code")
            assert any(re.fullmatch(r"  [0-9a-f]{7,} " + re.escape(SHOWN_SUBJECT), line) for line in window)
            assert not any(CONTROL.search(line) for line in window)
            # the log pane and the details panel (facts in Markdown) as the terminal would get them
            await wait_for(pilot, lambda: shows(app, "\\x1b]0;TITLE\\x07\\x1b[2J", FILE_NAME))
            screen_lines(app)
    finally:
        flow.close(3, "the test ended after step 2")
        session.close()
    _check_transcript(tmp_path)
