"""Local commands through sh, and the ``exec`` CLI end to end against the real sshd."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from todobox_deploy.remote.errors import CommandCancelled, CommandKilled
from todobox_deploy.remote.local import run_local
from todobox_deploy.remote.secrets import Secrets
from todobox_deploy.sandbox.sshd import ThrowawaySshd

from .conftest import Collector


def test_local_streams_both_and_redacts() -> None:
    sink = Collector()
    script = "printf 'a ü\\n'; printf 'tok=sekrit99\\n' >&2; printf 'tail'; exit 5"
    assert run_local(["sh", "-c", script], sink, secrets=Secrets(["sekrit99"])) == 5
    assert sink.lines() == ["a ü", "tail"] and sink.lines("stderr") == ["tok=[REDACTED]"]
    assert run_local(["no-such-program-xyz"], sink) == 127


def test_local_signal_and_cancel() -> None:
    with pytest.raises(CommandKilled):
        run_local(["sh", "-c", "kill -KILL $$"], Collector())
    cancel = threading.Event()
    threading.Timer(0.2, cancel.set).start()
    t0 = time.monotonic()
    with pytest.raises(CommandCancelled):
        run_local(["sh", "-c", "sleep 10 & sleep 10"], Collector(), cancel=cancel)
    assert time.monotonic() - t0 < 3


def _config(tmp_path: Path, sshd: ThrowawaySshd, known_hosts: Path | None) -> Path:
    (tmp_path / "ssh_config").write_text("")
    kh = f'known_hosts = "{known_hosts}"\n' if known_hosts else ""
    cfg = tmp_path / "deploy.toml"
    cfg.write_text(
        f'[target]\nhost = "127.0.0.1"\nport = {sshd.port}\nuser = "{sshd.user}"\n'
        f'identity_file = "{sshd.client_key}"\nssh_config = "{tmp_path / "ssh_config"}"\n{kh}'
        '[app]\npath = "/srv/app"\n[database]\nname = "d"\nuser = "u"\n'
        '[migration]\nexpected_head = "abc"\n[backup]\ndirectory = "/tmp/b"\n'
    )
    return cfg


def _exec(cfg: Path, tmp_path: Path, *cmd: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "xdg"), "HOME": str(tmp_path / "home")}
    return subprocess.run(
        [sys.executable, "-m", "todobox_deploy", "exec", "--config", str(cfg), *cmd],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )


@pytest.mark.integration
@pytest.mark.timeout(90)
def test_exec_cli_exit_codes(sshd_server: ThrowawaySshd, tmp_path: Path) -> None:
    cfg = _config(tmp_path, sshd_server, sshd_server.known_hosts)
    res = _exec(cfg, tmp_path, "--", "sh", "-c", "echo out; echo err >&2; exit 7")
    assert (res.returncode, res.stdout) == (7, "out\n") and "err\n" in res.stderr
    run_id = f"test-cli-{os.getpid()}-{time.time_ns()}"
    try:
        res = _exec(
            cfg, tmp_path, "--detached", "--run-id", run_id, "--", "sh", "-c", "echo detached; exit 4"
        )
        assert (res.returncode, res.stdout) == (4, "detached\n")
    finally:  # the remote host is this machine: the default run root is the login user's ~/.cache
        shutil.rmtree(Path("~/.cache/todobox-deploy/runs").expanduser() / run_id, ignore_errors=True)
    res = _exec(cfg, tmp_path, "--", "echo", "$(id)", "; touch pwned")
    assert (res.returncode, res.stdout) == (0, "$(id) ; touch pwned\n")
    unknown = _exec(_config(tmp_path, sshd_server, None), tmp_path, "--", "true")
    assert unknown.returncode == 255 and "unknown host key" in unknown.stderr and "SHA256:" in unknown.stderr
    closed = tmp_path / "cfg2"
    closed.mkdir()
    cfg2 = _config(closed, sshd_server, sshd_server.known_hosts)
    cfg2.write_text(cfg2.read_text().replace(f"port = {sshd_server.port}", "port = 1"))
    res = _exec(cfg2, tmp_path, "--", "true")
    assert res.returncode == 255 and "port 1" in res.stderr and "refused" in res.stderr
