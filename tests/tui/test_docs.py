"""The docs of the commit: read from a local clone (GitPython) or the host (``git show``), checked against
the clone, shown in the details panel of the two "Read ..." items, inert, journaled."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from git import Repo

from todobox_deploy.core.context import DeployContext
from todobox_deploy.engine.docs import NOT_FETCHED, read_docs
from todobox_deploy.remote.connection import CommandResult
from todobox_deploy.tui.app import DeployApp
from todobox_deploy.tui.text import for_markdown, for_markdown_document

from .conftest import DEMO_CONFIG, JournalView, Script, ScriptedPhases, wait_for
from .fakes import MIGRATION, SUMMARY, FakeHost, make_clone, ok, with_local_repo
from .test_wizard import SIZE, run_and_confirm, wizard

# -- the engine's reading ------------------------------------------------------------------------------


def test_local_clone_same_commit_lists_commits_and_migrations(tmp_path: Path) -> None:
    clone = make_clone(tmp_path / "clone")
    config = with_local_repo(clone.path)
    context = DeployContext(commit_before=clone.base, commit_target=clone.fix)
    reading = read_docs("predeploy.read_summary", config, context, None)
    assert reading.doc.text == SUMMARY and reading.doc.problem is None
    assert reading.doc.where == f"your local clone {clone.path}"
    assert reading.doc.commit is not None and reading.doc.commit.sha == clone.fix
    check = reading.check
    assert check is not None and check.same is True and "same commit" in check.summary
    assert [subject for _, subject in check.commits] == [
        "Fix missing user.api_token: idempotent migration d1f2e3c4b5a6"
    ]
    assert check.migration_files == (f"A\t{MIGRATION}",)
    assert reading.to_json()["same_commit"] is True and "text" not in reading.to_json()


def test_local_clone_on_another_commit_is_different(tmp_path: Path) -> None:
    clone = make_clone(tmp_path / "clone")
    with Repo(clone.path) as repo:
        repo.head.reference = repo.commit(clone.base)  # the operator reviewed the base commit
    context = DeployContext(commit_before=clone.base, commit_target=clone.fix)
    reading = read_docs("predeploy.read_summary", with_local_repo(clone.path), context, None)
    assert reading.check is not None and reading.check.same is False
    assert "DIFFERENT" in reading.check.summary and "ahead of your HEAD" in reading.check.summary
    assert reading.doc.text == SUMMARY  # still the target's document, read from the clone


def test_target_not_in_clone_falls_back_to_the_host(tmp_path: Path) -> None:
    clone = make_clone(tmp_path / "clone")
    target = "f" * 40
    config = with_local_repo(clone.path)
    host = FakeHost(config, [("cat-file -s", ok("5\n")), ("git show", ok("# doc\n"))])
    reading = read_docs("predeploy.read_summary", config, DeployContext(commit_target=target), host)
    assert reading.check is not None and reading.check.same is False
    assert "not in your clone" in reading.check.summary
    assert reading.doc.where == "the host" and reading.doc.text == "# doc\n"
    assert any(f"{target}:MIGRATION_FIX_SUMMARY.md" in call for call in host.calls)


def test_missing_document_is_said_plainly(tmp_path: Path) -> None:
    clone = make_clone(tmp_path / "clone")
    context = DeployContext(commit_before=clone.base, commit_target=clone.fix)
    reading = read_docs("predeploy.read_analysis", with_local_repo(clone.path), context, None)
    assert reading.doc.text is None
    assert reading.doc.problem == f"MIGRATION_ANALYSIS.md is not in commit {clone.fix[:12]}"
    missing = "fatal: path 'MIGRATION_ANALYSIS.md' does not exist in 'abc'"
    host = FakeHost(DEMO_CONFIG, [("cat-file -s", CommandResult(128, "", missing))])
    on_host = read_docs("predeploy.read_analysis", DEMO_CONFIG, DeployContext(commit_target="a" * 40), host)
    assert on_host.doc.problem == f"MIGRATION_ANALYSIS.md is not in commit {'a' * 12}"
    assert on_host.check is None


def test_before_the_preflight(tmp_path: Path) -> None:
    """No target yet: the upstream branch as last fetched on the host, else "available after ..."."""
    nothing = FakeHost(DEMO_CONFIG)
    reading = read_docs("predeploy.read_summary", DEMO_CONFIG, DeployContext(), nothing)
    assert reading.doc.text is None and reading.doc.problem == NOT_FETCHED
    fetched = FakeHost(
        DEMO_CONFIG,
        [
            ("refs/remotes/origin/master", ok("b" * 40 + "\n")),
            ("cat-file -s", ok("6\n")),
            ("git show", ok("# old\n")),
        ],
    )
    reading = read_docs("predeploy.read_summary", DEMO_CONFIG, DeployContext(), fetched)
    assert reading.doc.commit is not None and reading.doc.commit.sha == "b" * 40
    assert "origin/master as last fetched on the host" in reading.doc.commit.label
    assert reading.doc.text == "# old\n"


def test_a_broken_clone_is_reported_not_raised(tmp_path: Path) -> None:
    reading = read_docs(
        "predeploy.read_summary", with_local_repo(tmp_path / "nowhere"), DeployContext(), None
    )
    assert reading.check is not None and reading.check.same is None
    assert "cannot open the local clone" in reading.check.summary
    assert reading.doc.problem is not None and NOT_FETCHED in reading.doc.problem


def test_document_made_inert_but_kept_markdown() -> None:
    shown = for_markdown_document("# T\r\n\x1b[31mred\u202e\nnext")
    assert shown == "# T\n\\x1b[31mred\\u202e\nnext"


# -- in the wizard -------------------------------------------------------------------------------------


def details_text(app: DeployApp) -> str:
    return wizard(app).details_shown


async def test_docs_shown_in_details_and_journaled(
    build_app: Callable[..., DeployApp], tmp_path: Path, journal: JournalView
) -> None:
    clone = make_clone(tmp_path / "clone")
    config = with_local_repo(clone.path)
    context = DeployContext(commit_before=clone.base, commit_target=clone.fix)
    app = build_app(config=config, session=FakeHost(config), context=context)
    async with app.run_test(size=SIZE) as pilot:
        wizard(app).checklist_tree.select_id("predeploy.read_summary")
        await wait_for(pilot, lambda: "Migration fix summary" in details_text(app))
        text = details_text(app)
        assert "same commit" in text and "Fix missing user" in text and "d1f2e3c4b5a6" in text
        assert "\x1b" not in text and "\\x1b[31mred" in text and "\u202e" not in text  # inert
        assert "Read MIGRATION\\_FIX\\_SUMMARY.md" in text or "MIGRATION_FIX_SUMMARY" in text
        wizard(app).checklist_tree.select_id("predeploy.read_analysis")
        await wait_for(pilot, lambda: "Not shown" in details_text(app))
        assert "is not in commit" in details_text(app)
        wizard(app).checklist_tree.select_id("predeploy.read_summary")  # cached: not read again
        await pilot.pause(0.1)
    reads = [e for e in journal if e["event"] == "commit_docs_read"]
    assert [(e["item"], e["found"], e["same_commit"]) for e in reads] == [
        ("predeploy.read_summary", True, True),
        ("predeploy.read_analysis", False, True),
    ]
    assert reads[0]["commit"] == clone.fix and reads[0]["operator"] == "alice"


async def test_docs_without_a_session_say_so(build_app: Callable[..., DeployApp]) -> None:
    app = build_app(config=DEMO_CONFIG)
    async with app.run_test(size=SIZE) as pilot:
        wizard(app).checklist_tree.select_id("predeploy.read_summary")
        await wait_for(pilot, lambda: "Not shown" in details_text(app))
        assert "no connection to the host" in details_text(app)


async def test_docs_read_again_once_the_preflight_fetched(
    build_app: Callable[..., DeployApp], scripted: ScriptedPhases
) -> None:
    """Before the pre-flight: "available after ..."; after it set commit_target: the target's document."""
    target = "c" * 40
    scripted.scripts["preflight"] = Script(establish={"commit_before": "d" * 40, "commit_target": target})
    host = FakeHost(DEMO_CONFIG, [("cat-file -s", ok("7\n")), ("git show", ok("# Fetched doc\n"))])
    app = build_app(config=DEMO_CONFIG, session=host)
    async with app.run_test(size=SIZE) as pilot:
        wizard(app).checklist_tree.select_id("predeploy.read_summary")
        await wait_for(pilot, lambda: for_markdown(NOT_FETCHED) in details_text(app))
        wizard(app).checklist_tree.select_id("predeploy.backup")
        await pilot.pause()
        await run_and_confirm(pilot, app)  # backup
        await run_and_confirm(pilot, app)  # preflight: the target is known now
        wizard(app).checklist_tree.select_id("predeploy.read_summary")
        await wait_for(pilot, lambda: "Fetched doc" in details_text(app))
        assert f"Commit {target[:12]}" in details_text(app)


def test_local_repo_is_a_local_path_resolved_against_the_config(tmp_path: Path) -> None:
    from todobox_deploy.config import ConfigError, parse_config

    base = """
[target]
host = "h"
[app]
path = "/srv/todobox"
{local}
[database]
name = "todobox"
user = "todobox"
[migration]
expected_head = "d1f2e3c4b5a6"
[backup]
directory = "/var/backups"
"""
    assert parse_config(base.format(local=""), base=tmp_path).app.local_repo is None
    parsed = parse_config(base.format(local='local_repo = "src/todobox"'), base=tmp_path)
    assert parsed.app.local_repo == tmp_path / "src" / "todobox"
    home = parse_config(base.format(local='local_repo = "~/todobox"'), base=tmp_path)
    assert home.app.local_repo == Path("~/todobox").expanduser()
    with pytest.raises(ConfigError, match="local_repo"):
        parse_config(base.format(local="local_repo = 3"), base=tmp_path)
