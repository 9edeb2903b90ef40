"""Whole unattended deploys on the sandbox's harder states: an app whose import queries the drifted
schema (migrated without importing it), and a fix commit that renames the WSGI module (refused before the
stop, the app still up)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from run_helpers import HealthWatch, app_status, events, health_url, journal_in, private_config, run_cli

from todobox_deploy.sandbox.http import http_status
from todobox_deploy.sandbox.manager import SandboxInfo

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def test_an_app_that_cannot_import_is_migrated_standalone(
    sandbox_state: Callable[[str], SandboxInfo], tmp_path: Path
) -> None:
    info = sandbox_state("import-queries-user")
    config = private_config(info.config, tmp_path)
    run = run_cli(["run", "--config", str(config), "--plain", "--yes"], tmp_path / "state", timeout=280)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr
    journal = journal_in(run.stdout)
    (migrate,) = events(journal, "phase_finished", phase="migrate")
    assert migrate["status"] == "ok" and "standalone mode" in migrate["summary"]
    mode = migrate["facts"]["mode"]
    assert mode.startswith("standalone (auto: the app does not import") and "1054" in mode
    assert app_status(info.app_url) == 200  # the user list answers again


def test_a_renamed_wsgi_module_is_refused_before_the_stop(
    sandbox_state: Callable[[str], SandboxInfo], tmp_path: Path
) -> None:
    info = sandbox_state("renamed-wsgi")
    config = private_config(info.config, tmp_path)
    run = run_cli(["run", "--config", str(config), "--plain", "--yes"], tmp_path / "state", timeout=280)
    assert run.returncode == 1, run.stdout[-4000:] + run.stderr
    assert "wsgi.py (what the process manager loads) does not exist" in run.stdout
    assert "nothing was stopped" in run.stdout and "host state: app up" in run.stdout
    journal = journal_in(run.stdout)
    assert not events(journal, "phase_started", phase="stop_app")
    assert http_status(info.app_url) == 500  # still serving (the bug state's user list), never stopped


def test_online_migration_keeps_the_app_serving_until_the_restart(
    sandbox_reset: SandboxInfo, tmp_path: Path
) -> None:
    """``--online`` on the bug state (the rehearsal finds the fix additive): the stop leaves the app up,
    the migration runs under it, and the downtime is the restart into the new code."""
    info = sandbox_reset
    config = private_config(info.config, tmp_path)
    with HealthWatch(health_url(info.config)) as watch:
        run = run_cli(
            ["run", "--config", str(config), "--plain", "--yes", "--online"], tmp_path / "state", timeout=280
        )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr
    journal = journal_in(run.stdout)
    assert events(journal, "online_migration_chosen")
    (stop,) = events(journal, "phase_finished", phase="stop_app")
    assert "left running" in stop["summary"]
    (migrate,) = events(journal, "phase_finished", phase="migrate")
    assert migrate["status"] == "ok"
    changes: dict[str, str] = {}
    for entry in events(journal, "context_updated"):
        changes.update(entry["changes"])
    down = datetime.fromisoformat(changes["app_down_at"])
    up = datetime.fromisoformat(changes["app_up_at"])
    before_restart = [status for at, status in watch.samples if at < down]
    assert before_restart and all(s == 200 for s in before_restart)  # served through backup .. migration
    assert any(s != 200 for at, s in watch.samples if down <= at <= up)  # the restart really took it down
    assert (up - down).total_seconds() < 30
    assert app_status(info.app_url) == 200


def test_nothing_to_deploy_leaves_the_app_running(
    sandbox_state: Callable[[str], SandboxInfo], tmp_path: Path
) -> None:
    """The `fixed` state: the host already runs the fix and the database is done. The pre-flight says so,
    the app is never stopped (its health URL answers 200 throughout) and nothing is migrated."""
    info = sandbox_state("fixed")
    config = private_config(info.config, tmp_path)
    with HealthWatch(health_url(info.config)) as watch:
        run = run_cli(["run", "--config", str(config), "--plain", "--yes"], tmp_path / "state", timeout=280)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr
    journal = journal_in(run.stdout)
    (preflight,) = events(journal, "phase_finished", phase="preflight")
    assert "the app is not stopped" in preflight["facts"]["nothing to deploy"]
    assert preflight["summary"].startswith("nothing to deploy (the app is not stopped); ")
    for phase in ("stop_app", "start_app"):
        (finished,) = events(journal, "phase_finished", phase=phase)
        assert "left running: nothing to deploy" in finished["summary"], finished
    (migrate,) = events(journal, "phase_finished", phase="migrate")
    assert migrate["summary"].startswith("nothing to migrate") and "nothing was run" in migrate["summary"]
    assert watch.answers and all(s == 200 for s in watch.answers), watch.answers  # no downtime at all
