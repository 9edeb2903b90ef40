"""The command line as an operator meets it: exit codes and messages, through a real subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from todobox_deploy.sandbox.manager import SandboxInfo


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "todobox_deploy", *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
    )


def test_checklist_command_lists_every_section() -> None:
    out = cli("checklist")
    assert out.returncode == 0, out.stderr
    for title in ("Pre-Deployment", "Check Database Before Migration", "Rollback", "Success Criteria"):
        assert title in out.stdout


def test_missing_config_exits_2_with_a_clear_message(tmp_path: Path) -> None:
    out = cli("run", "--config", str(tmp_path / "nope.toml"))
    assert out.returncode == 2
    assert "no such config file" in out.stderr


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
