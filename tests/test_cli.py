"""The command line as an operator meets it: exit codes and messages, through a real subprocess."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from run_helpers import private_config

from todobox_deploy.cli import SUBCOMMANDS, build_parser
from todobox_deploy.sandbox.manager import SandboxInfo


def cli(*args: str, timeout: float = 60, state: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The command line to its end, stdin closed; with ``state``, session folders go under it."""
    env = {**os.environ, "XDG_STATE_HOME": str(state)} if state else None
    return subprocess.run(
        [sys.executable, "-m", "todobox_deploy", *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        env=env,
    )


def test_checklist_command_lists_every_section() -> None:
    out = cli("checklist")
    assert out.returncode == 0, out.stderr
    for title in ("Pre-Deployment", "Check Database Before Migration", "Rollback", "Success Criteria"):
        assert title in out.stdout


def test_the_top_level_help_lists_every_command() -> None:
    out = cli("--help")
    assert out.returncode == 0, out.stderr
    for name in SUBCOMMANDS:
        assert name in out.stdout, name


def test_a_command_gets_the_same_parser_alone_as_in_the_whole() -> None:
    """``parse_args`` builds only the parser of the command being run: its usage, help and errors must be
    those of the whole parser's; an unknown command still gets the error listing every choice."""
    for name in SUBCOMMANDS:
        alone = build_parser(name)._subparsers._group_actions[0].choices[name]  # type: ignore[union-attr]
        whole = build_parser()._subparsers._group_actions[0].choices[name]  # type: ignore[union-attr]
        assert alone.format_help() == whole.format_help(), name
    out = cli("runn", "--config", "x.toml")
    assert out.returncode == 2 and "invalid choice: 'runn'" in out.stderr and "sandbox" in out.stderr
    out = cli("run", "--confg", "x.toml")
    assert out.returncode == 2 and "usage: todobox-deploy run" in out.stderr


def test_a_listing_whose_reader_went_away_ends_quietly() -> None:
    """``checklist | head``: the reader may go away before the listing is written (here it is gone before
    the first byte: ``| true``). The command ends with 0 and no traceback; under ``pipefail`` its own exit
    code is the pipeline's."""
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", f"{shlex.quote(sys.executable)} -m todobox_deploy checklist | true"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr


def test_missing_config_exits_2_with_a_clear_message(tmp_path: Path) -> None:
    out = cli("run", "--config", str(tmp_path / "nope.toml"))
    assert out.returncode == 2
    assert "no such config file" in out.stderr


@pytest.mark.parametrize("command", ["run", "rollback"])
def test_yes_without_plain_is_refused(command: str, tmp_path: Path) -> None:
    """The TUI always asks a person: ``--yes`` is for the plain front end only (checked before anything)."""
    out = cli(command, "--config", str(tmp_path / "nope.toml"), "--yes")
    assert out.returncode == 2
    assert "--yes needs --plain" in out.stderr


@pytest.mark.integration
def test_unknown_host_key_is_refused_without_a_terminal(sandbox: SandboxInfo, tmp_path: Path) -> None:
    """No known_hosts entry and no terminal to ask: refused before authentication, fingerprint shown."""
    text = sandbox.config.read_text().replace(f'known_hosts = "{sandbox.known_hosts}"', "# no known_hosts")
    assert text != sandbox.config.read_text()
    config = tmp_path / "deploy.toml"
    config.write_text(text)
    expected = subprocess.run(
        ["ssh-keygen", "-lf", str(sandbox.directory / "ssh" / "ssh_host_ed25519_key.pub")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()[1]
    out = cli("run", "--config", str(config))
    assert out.returncode == 255
    assert "unknown host key" in out.stderr
    assert expected in out.stderr


@pytest.mark.integration
def test_exec_in_the_app_runs_flask_with_the_apps_environment(sandbox_reset: SandboxInfo) -> None:
    """The quick-reference commands: `exec --app -- flask db current` answers from the host's app."""
    out = cli("exec", "--config", str(sandbox_reset.config), "--app", "--", "flask", "db", "current")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "c682ef478e45 (head)"
    assert "Will assume non-transactional DDL" in out.stderr  # Alembic's log goes to stderr
    failed = cli("exec", "--config", str(sandbox_reset.config), "--app", "--", "flask", "db", "nonsense")
    assert failed.returncode == 2 and "No such command 'nonsense'" in failed.stderr


@pytest.mark.integration
def test_rollback_without_a_deploy_session_exits_2_and_runs_nothing(
    sandbox: SandboxInfo, tmp_path: Path
) -> None:
    """Nothing recorded a deploy of this host and config: nothing to go back to, no session, no lock."""
    config = private_config(sandbox.config, tmp_path)
    state = tmp_path / "state"
    out = cli("rollback", "--config", str(config), "--plain", "--yes", state=state)
    assert out.returncode == 2, out.stdout + out.stderr
    assert f"no deploy session for {sandbox.ssh_host} with config {config}" in out.stderr
    assert "journal:" not in out.stdout
    assert not list(state.glob("todobox-deploy/sessions/*"))
    assert not (tmp_path / "runs" / "deploy.lock").exists()
