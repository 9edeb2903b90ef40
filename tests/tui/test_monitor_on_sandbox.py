"""The monitoring screen on the real sandbox: it tails the app's log over SSH, and the ``Unknown column`` a
real ``/users`` request writes there (the sandbox is in the bug state) is matched and journaled once."""

from __future__ import annotations

import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from todobox_deploy.checklist import CHECKLIST
from todobox_deploy.config import load_config
from todobox_deploy.engine.flow import DeployFlow
from todobox_deploy.engine.phases import PHASES
from todobox_deploy.engine.session import DeploySession
from todobox_deploy.journal.journal import Journal
from todobox_deploy.remote.connection import SshConnection
from todobox_deploy.sandbox.manager import SandboxInfo
from todobox_deploy.tui.app import make_app
from todobox_deploy.tui.screens.monitor import MonitorScreen

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


async def wait_for(pilot: Pilot[Any], predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return
        await pilot.pause(0.05)
    raise AssertionError("condition not met in time")


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


async def test_monitoring_tails_the_app_log_and_matches_unknown_column_once(
    sandbox_reset: SandboxInfo, tmp_path: Path
) -> None:
    config = load_config(sandbox_reset.config)
    assert config.app.check_url is not None
    session = DeploySession(
        config, connection=SshConnection(config.target, pinned_known_hosts=tmp_path / "pins")
    )
    journal = Journal(tmp_path / "journal.jsonl", operator="erin", host=config.target.host)
    flow = DeployFlow(
        CHECKLIST, PHASES, session=session, operator="erin", host=config.target.host, journal=journal
    )
    app = make_app(flow)
    try:
        async with app.run_test(size=(120, 36)) as pilot:
            await pilot.press("m")
            screen = app.screen
            assert isinstance(screen, MonitorScreen)
            pane = screen.pane("app-log-1")
            assert pane is not None
            await wait_for(pilot, lambda: pane.state.startswith("following: tail -n 200 -F -- "))
            probe = uuid.uuid4().hex
            assert _get(f"{config.app.check_url}?probe={probe}") == 500  # the bug: api_token is missing
            await wait_for(pilot, lambda: any(probe in line for line in pane.window("app-log-1")))
            await wait_for(pilot, lambda: any("Unknown column" in line for line in pane.window("app-log-1")))
            await wait_for(pilot, lambda: any(e["event"] == "issue_matched" for e in journal.read()))
            again = uuid.uuid4().hex
            assert _get(f"{config.app.check_url}?probe={again}") == 500
            await wait_for(pilot, lambda: any(again in line for line in pane.window("app-log-1")))
            await pilot.pause(0.3)
            # MariaDB's error log, asked of the server, is one of the app's log_files here: no second tail
            mysql = screen.pane("mysql-error")
            assert mysql is not None
            await wait_for(pilot, lambda: "already tailed as" in mysql.state)
    finally:
        flow.close(3, "the test ended")
        session.close()
    matched = [e for e in journal.read() if e["event"] == "issue_matched"]
    assert [(e["row"], e["source"]) for e in matched] == [("unknown_column", "app-log-1")]
    assert "Unknown column" in matched[0]["line"]
