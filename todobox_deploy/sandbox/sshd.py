"""A throwaway OpenSSH server on 127.0.0.1 with its own host key and one operator key.

Everything lives in one directory, so the server can be stopped from another process (by the pid
file) and started again later with the same keys and, when it is still free, the same port.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import subprocess
from pathlib import Path

from todobox_deploy.sandbox.ports import free_port, port_accepts, port_is_free
from todobox_deploy.sandbox.procs import (
    SandboxError,
    cmdline,
    descendants,
    pid_alive,
    read_pid,
    terminate,
    wait_ready,
)

SSHD = "/usr/sbin/sshd"


def _find_sshd() -> str:
    path = SSHD if os.path.exists(SSHD) else shutil.which("sshd")
    if not path:
        raise SandboxError("sshd not found: install openssh-server (apt-get install -y openssh-server)")
    return str(Path(path).resolve())  # sshd re-exec needs an absolute path


def _keygen(path: Path, comment: str) -> None:
    if path.exists() and path.with_name(path.name + ".pub").exists():
        return
    keygen = shutil.which("ssh-keygen")
    if not keygen:
        raise SandboxError("ssh-keygen not found: install openssh-client")
    path.unlink(missing_ok=True)
    subprocess.run(
        [keygen, "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        capture_output=True,
    )
    path.chmod(0o600)


class ThrowawaySshd:
    """An ``sshd -D -e`` on 127.0.0.1 that lets the current OS user in with ``client_key``."""

    host: str = "127.0.0.1"

    def __init__(self, directory: Path, session_env: dict[str, str] | None = None) -> None:
        """``session_env``: variables sshd sets in every session (``SetEnv``), e.g. a PATH."""
        self.directory = Path(directory).resolve()
        self.session_env = dict(session_env or {})
        self.user = getpass.getuser()
        self.host_key = self.directory / "ssh_host_ed25519_key"
        self.host_key_pub = self.directory / "ssh_host_ed25519_key.pub"
        self.client_key = self.directory / "operator_ed25519"
        self.client_key_pub = self.directory / "operator_ed25519.pub"
        self.authorized_keys = self.directory / "authorized_keys"
        self.known_hosts = self.directory / "known_hosts"
        self.config_path = self.directory / "sshd_config"
        self.pid_file = self.directory / "sshd.pid"
        self.log_path = self.directory / "sshd.log"
        self._state_path = self.directory / "sshd.json"
        self._proc: subprocess.Popen[bytes] | None = None
        self.port: int = self._saved_port() or 0

    # -- state ---------------------------------------------------------------------------------
    def _saved_port(self) -> int | None:
        try:
            port = json.loads(self._state_path.read_text())["port"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return port if isinstance(port, int) else None

    @property
    def pid(self) -> int | None:
        """The listener's pid while it runs, else None."""
        pid = read_pid(self.pid_file)
        return pid if pid_alive(pid) and pid is not None and "sshd" in cmdline(pid) else None

    def is_running(self) -> bool:
        return self.pid is not None and port_accepts(self.port)

    # -- setup ---------------------------------------------------------------------------------
    def _prepare(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.directory.chmod(0o755)  # sshd reads authorized_keys as the login user
        _keygen(self.host_key, "todobox-sandbox-host")
        _keygen(self.client_key, "todobox-sandbox-operator")
        self.authorized_keys.write_text(self.client_key_pub.read_text())
        self.authorized_keys.chmod(0o644)
        if not self.port or not port_is_free(self.port):
            self.port = free_port()
        self._state_path.write_text(json.dumps({"port": self.port}) + "\n")
        self._write_known_hosts()
        self.config_path.write_text(self._config_text())
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)

    def _write_known_hosts(self) -> None:
        key_type, key_b64 = self.host_key_pub.read_text().split()[:2]
        self.known_hosts.write_text(f"[{self.host}]:{self.port} {key_type} {key_b64}\n")

    def _config_text(self) -> str:
        return "\n".join(
            [
                f"Port {self.port}",
                f"ListenAddress {self.host}",
                f"HostKey {self.host_key}",
                f"PidFile {self.pid_file}",
                f"AuthorizedKeysFile {self.authorized_keys}",
                "StrictModes no",
                "UsePAM no",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PubkeyAuthentication yes",
                "PermitRootLogin prohibit-password",
                "MaxSessions 50",
                "MaxStartups 50",
                "ClientAliveInterval 0",
                "LogLevel VERBOSE",
                "Subsystem sftp internal-sftp",
                *(f'SetEnv {key}="{value}"' for key, value in self.session_env.items()),
                "",
            ]
        )

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> None:
        """Start sshd (no-op when this directory's sshd already runs) and wait until it accepts TCP."""
        if self.is_running():
            return
        sshd = _find_sshd()
        self._prepare()
        check = subprocess.run([sshd, "-t", "-f", str(self.config_path)], capture_output=True, text=True)
        if check.returncode != 0:
            raise SandboxError(f"sshd -t rejected {self.config_path}: {check.stderr.strip()}")
        self.pid_file.unlink(missing_ok=True)
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                [sshd, "-D", "-e", "-f", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid_file.write_text(f"{self._proc.pid}\n")
        wait_ready(
            self._proc,
            lambda: port_accepts(self.port),
            name=f"sshd on port {self.port}",
            log_path=self.log_path,
            timeout=timeout,
            stop=self.stop,
        )

    def stop(self) -> list[int]:
        """Stop the listener (and any session children it still has); return the pids signalled."""
        pid = read_pid(self.pid_file)
        stopped: list[int] = []
        if pid is not None and "sshd" in cmdline(pid):
            sessions = descendants(pid)
            stopped = terminate(pid, timeout=5.0)
            for child in sessions:
                stopped += terminate(child, timeout=2.0)
        if self._proc is not None:
            self._wait_child()
            self._proc = None
        self.pid_file.unlink(missing_ok=True)
        return stopped

    def _wait_child(self) -> None:
        assert self._proc is not None
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=5)
