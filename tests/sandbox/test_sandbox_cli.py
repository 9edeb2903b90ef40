"""``todobox-deploy sandbox up|status|down`` through its argparse front end."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from todobox_deploy.sandbox import sshd as sshd_module
from todobox_deploy.sandbox.cli import add_sandbox_parser, run_sandbox_command
from todobox_deploy.sandbox.manager import SandboxInfo
from todobox_deploy.sandbox.procs import SandboxError


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="todobox-deploy")
    add_sandbox_parser(parser.add_subparsers(dest="command", required=True))
    return run_sandbox_command(parser.parse_args(list(argv)))


def test_status_without_a_sandbox(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("sandbox", "status", "--dir", str(tmp_path / "none")) == 1
    assert "sandbox up" in capsys.readouterr().err


def test_down_without_a_sandbox(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("sandbox", "down", "--dir", str(tmp_path / "none")) == 0
    assert "nothing was running" in capsys.readouterr().out


def test_missing_sshd_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sshd_module, "SSHD", str(tmp_path / "no-sshd"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SandboxError, match="install openssh-server"):
        sshd_module.ThrowawaySshd(tmp_path / "ssh").start()
    assert run("sandbox", "up", "--dir", str(tmp_path / "sb"), "--users", "10") == 1
    assert "install openssh-server" in capsys.readouterr().err


@pytest.mark.integration
def test_up_and_status_json(sandbox: SandboxInfo, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("sandbox", "up", "--dir", str(sandbox.directory), "--users", "2000", "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["config"] == str(sandbox.config)
    assert data["app_url"] == sandbox.app_url
    assert data["ssh"]["port"] == sandbox.ssh_port and data["db"]["port"] == sandbox.db_port
    assert run("sandbox", "status", "--dir", str(sandbox.directory), "--json") == 0
    status = json.loads(capsys.readouterr().out)
    assert all(isinstance(pid, int) for pid in status["processes"].values())


@pytest.mark.integration
def test_up_human_output(sandbox: SandboxInfo, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("sandbox", "up", "--dir", str(sandbox.directory), "--users", "2000") == 0
    out = capsys.readouterr().out
    assert "sandbox up in" in out and str(sandbox.config) in out and sandbox.app_url in out
