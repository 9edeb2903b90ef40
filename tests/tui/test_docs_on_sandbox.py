"""The docs of the commit on the real sandbox: read from the host with ``git show`` (before the pre-flight:
origin/master as last fetched; after it: the fetched target), then from a local clone of the same origin,
checked against it (same commit, the fix's commit and migration file listed)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from git import Repo

from todobox_deploy.checklist import CHECKLIST
from todobox_deploy.config import DeployConfig, load_config
from todobox_deploy.core.context import DeployContext
from todobox_deploy.engine.flow import DeployFlow
from todobox_deploy.engine.phases import PHASES
from todobox_deploy.engine.session import DeploySession
from todobox_deploy.journal.journal import Journal
from todobox_deploy.remote.connection import SshConnection
from todobox_deploy.sandbox.manager import SandboxInfo
from todobox_deploy.tui.app import DeployApp, make_app

from .conftest import wait_for
from .test_wizard import SIZE, run_and_confirm, wizard

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

TITLE = "Migration fix summary: d1f2e3c4b5a6"  # the first line of the fix commit's document


def details(app: DeployApp) -> str:
    """The details panel's text, Markdown escapes removed."""
    return wizard(app).details_shown.replace("\\", "")


def open_flow(
    config: DeployConfig, conn: SshConnection, journal: Journal, context: DeployContext | None
) -> DeployFlow:
    session = DeploySession(config, connection=conn)
    return DeployFlow(
        CHECKLIST,
        PHASES,
        session=session,
        operator="erin",
        host=config.target.host,
        journal=journal,
        context=context,
    )


async def test_docs_from_the_host_then_from_a_local_clone(sandbox_reset: SandboxInfo, tmp_path: Path) -> None:
    config = load_config(sandbox_reset.config)
    assert config.app.local_repo is None
    conn = SshConnection(config.target, pinned_known_hosts=tmp_path / "pins")
    journal = Journal(tmp_path / "journal.jsonl", operator="erin", host=config.target.host)
    flow = open_flow(config, conn, journal, None)
    try:
        app = make_app(flow)
        async with app.run_test(size=SIZE) as pilot:
            wizard(app).checklist_tree.select_id("predeploy.read_summary")
            await wait_for(pilot, lambda: TITLE in details(app), timeout=30)
            assert "origin/master as last fetched on the host" in details(app)
            assert "local_repo" in details(app)  # no clone configured: how to get the commit check
            wizard(app).checklist_tree.select_id("predeploy.backup")
            await pilot.pause()
            await run_and_confirm(pilot, app)  # backup (real)
            await run_and_confirm(pilot, app)  # pre-flight (real): fetches, sets the target commit
            target = flow.context.commit_target
            assert target is not None
            wizard(app).checklist_tree.select_id("predeploy.read_analysis")
            await wait_for(pilot, lambda: "Migration analysis" in details(app), timeout=30)
            assert (
                f"Commit {target[:12]} (the target commit, fetched by the pre-flight) from the host"
                in details(app)
            )
    finally:
        flow.close(3, "the test read the docs")
    reads = [e for e in journal.read() if e["event"] == "commit_docs_read"]
    assert [(e["item"], e["where"], e["found"]) for e in reads] == [
        ("predeploy.read_summary", "the host", True),
        ("predeploy.read_analysis", "the host", True),
    ]
    assert reads[1]["commit"] == target

    # The operator's local clone of the same origin: the commit the host fetched is the one reviewed.
    assert sandbox_reset.app_dir is not None
    with Repo(sandbox_reset.app_dir) as deployed:
        origin = deployed.remotes.origin.url
    clone = tmp_path / "clone"
    Repo.clone_from(origin, clone).close()
    local = dataclasses.replace(config, app=dataclasses.replace(config.app, local_repo=clone))
    again = open_flow(
        local, conn, Journal(tmp_path / "journal2.jsonl", operator="erin", host="-"), flow.context
    )
    try:
        app = make_app(again)
        async with app.run_test(size=SIZE) as pilot:
            wizard(app).checklist_tree.select_id("predeploy.read_summary")
            await wait_for(pilot, lambda: TITLE in details(app), timeout=30)
            text = details(app)
            assert f"from your local clone {clone}" in text
            assert f"✔ same commit {target[:12]}" in text
            assert "Fix missing user.api_token" in text  # the commit between the host's HEAD and the target
            assert "A migrations/versions/d1f2e3c4b5a6" in text
    finally:
        again.close(3, "the test read the docs")
        conn.close()
