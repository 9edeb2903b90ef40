"""What the wizard's first frame does not load (tests/bench_first_frame.py measures the time): the screens
and helpers that load on first use, and the database, SSH and git libraries."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

LATER = (
    "todobox_deploy.tui.commands",
    "todobox_deploy.tui.screens.signoff",
    "todobox_deploy.tui.screens.confirm",
    "todobox_deploy.tui.screens.gates",
    "todobox_deploy.tui.screens.ask",
    "todobox_deploy.tui.screens.help",
    "todobox_deploy.tui.screens.monitor",
    "todobox_deploy.tui.screens.search",
    "todobox_deploy.tui.cockpit_actions",
    "todobox_deploy.tui.bundle",
    "todobox_deploy.tui.docs_view",
    "todobox_deploy.engine.signoff",
    "todobox_deploy.engine.docs",
    "todobox_deploy.checklist.report",  # the sign-off's snapshot types
    "todobox_deploy.journal.report",
    "todobox_deploy.journal.verify",
    "todobox_deploy.sandbox.cli",  # other sub-commands' parsers: `run` builds only its own
    "todobox_deploy.exec_cli",
    "textual.widgets._markdown",  # the details' Markdown mounts right after the first frame
    "todobox_deploy.sandbox.manager",
    "todobox_deploy.engine.phases.backup",  # each phase's body loads on its first run
    "todobox_deploy.engine.phases.rehearsal",
    "todobox_deploy.engine.phases.migrate",
    "sh",
    "paramiko",
    "pymysql",
    "git",
)


def _run(code: str) -> object:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_wizard_and_the_cli_parser_load_nothing_that_waits_for_first_use() -> None:
    loaded = _run(
        f"""
        import json, sys
        from todobox_deploy.cli import parse_args
        parse_args(["run", "--config", "deploy.toml"])
        import todobox_deploy.tui.app
        import todobox_deploy.tui.screens.wizard
        print(json.dumps([m for m in {LATER!r} if m in sys.modules]))
        """
    )
    assert loaded == []


def test_the_keys_screen_lists_the_screens_not_loaded_yet() -> None:
    titles = _run(
        """
        import json
        from todobox_deploy.tui.app import DeployApp
        from todobox_deploy.tui.screens.help import key_sections
        print(json.dumps([title for title, _ in key_sections(DeployApp)]))
        """
    )
    assert isinstance(titles, list)
    for title in ("Phase gate (after a phase)", "Sign-off", "Rollback offer", "Monitor", "Session search"):
        assert title in titles, title
