"""A throwaway MariaDB server on 127.0.0.1 with its own datadir, socket and port.

Never touches the system server: ``--no-defaults`` comes first on every command, so
``/etc/mysql/*.cnf`` (socket ``/run/mysqld``, port 3306) is never read.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from todobox_deploy.sandbox.ports import free_port, port_accepts, port_is_free
from todobox_deploy.sandbox.procs import (
    SandboxError,
    cmdline,
    pid_alive,
    read_pid,
    remove_socket,
    short_socket_path,
    terminate,
    wait_ready,
)

if TYPE_CHECKING:
    import pymysql


def _tool(*names: str) -> str:
    for name in names:
        path = shutil.which(name) or (f"/usr/sbin/{name}" if os.path.exists(f"/usr/sbin/{name}") else None)
        if path:
            return path
    raise SandboxError(f"{names[0]} not found: install mariadb-server (apt-get install -y mariadb-server)")


class ThrowawayMariaDB:
    """``mariadbd`` on a free port with a passwordless root reachable over its unix socket."""

    host: str = "127.0.0.1"

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory).resolve()
        self.datadir = self.directory / "data"
        self.tmpdir = self.directory / "tmp"  # own temp tables: /tmp may be shared with other servers
        self.log_path = self.directory / "mariadb.log"
        self.pid_file = self.directory / "mariadbd.pid"
        self._state_path = self.directory / "mariadb.json"
        self._proc: subprocess.Popen[bytes] | None = None
        state = self._load_state()
        self.port: int = int(state.get("port") or 0)
        saved_socket = state.get("socket")
        self.socket: Path = Path(saved_socket) if saved_socket else self._choose_socket()

    # -- state ---------------------------------------------------------------------------------
    def _load_state(self) -> dict[str, Any]:
        try:
            state = json.loads(self._state_path.read_text())
        except (OSError, ValueError):
            return {}
        return state if isinstance(state, dict) else {}

    def _choose_socket(self) -> Path:
        return short_socket_path(self.directory, "mysqld.sock", "tbx-db")

    def _save_state(self) -> None:
        self._state_path.write_text(json.dumps({"port": self.port, "socket": str(self.socket)}) + "\n")

    @property
    def pid(self) -> int | None:
        """The server's pid while it runs, else None."""
        pid = read_pid(self.pid_file)
        return pid if pid is not None and pid_alive(pid) and "mariadbd" in cmdline(pid) else None

    def is_running(self) -> bool:
        return self.pid is not None and self._socket_accepts()

    def _socket_accepts(self) -> bool:
        import socket as _socket

        with _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM) as sock:
            sock.settimeout(0.2)
            try:
                sock.connect(str(self.socket))
            except OSError:
                return False
            return True

    # -- lifecycle -----------------------------------------------------------------------------
    def _install(self) -> None:
        if (self.datadir / "mysql").is_dir():
            return
        if self.datadir.exists():
            shutil.rmtree(self.datadir)
        self.tmpdir.mkdir(parents=True, exist_ok=True)
        cmd = [
            _tool("mariadb-install-db", "mysql_install_db"),
            "--no-defaults",
            f"--datadir={self.datadir}",
            f"--tmpdir={self.tmpdir}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            "--skip-name-resolve",
        ]
        if os.geteuid() == 0:
            cmd.append("--user=root")
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise SandboxError(f"mariadb-install-db failed ({done.returncode}):\n{done.stderr[-2000:]}")

    def start(self, timeout: float = 30.0) -> None:
        """Initialise the datadir if needed, start mariadbd, wait for the socket, drop anonymous users."""
        if self.is_running():
            return
        server = _tool("mariadbd", "mysqld")
        self.directory.mkdir(parents=True, exist_ok=True)
        self.socket.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._install()
        self.tmpdir.mkdir(parents=True, exist_ok=True)
        if not self.port or not port_is_free(self.port):
            self.port = free_port()
        self._save_state()
        self.socket.unlink(missing_ok=True)
        self.pid_file.unlink(missing_ok=True)
        cmd = [
            server,
            "--no-defaults",
            f"--datadir={self.datadir}",
            f"--tmpdir={self.tmpdir}",
            f"--socket={self.socket}",
            f"--port={self.port}",
            "--bind-address=127.0.0.1",
            "--skip-log-bin",
            "--skip-name-resolve",
            f"--pid-file={self.pid_file}",
            f"--log-error={self.log_path}",
            "--innodb-buffer-pool-size=64M",
        ]
        if os.geteuid() == 0:
            cmd.append("--user=root")
        self._proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.pid_file.write_text(f"{self._proc.pid}\n")
        wait_ready(
            self._proc,
            lambda: self._socket_accepts() and port_accepts(self.port),
            name=f"mariadbd on {self.socket}",
            log_path=self.log_path,
            timeout=timeout,
            stop=self.stop,
        )
        self._drop_anonymous_users()

    def _drop_anonymous_users(self) -> None:
        conn = self.admin_connect()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT User, Host FROM mysql.user WHERE User = ''")
                for _user, host in cur.fetchall():
                    cur.execute("DROP USER ''@%s", (host,))
        finally:
            conn.close()

    def stop(self) -> list[int]:
        """Shut the server down (SIGTERM is a clean shutdown for mariadbd); return the pids signalled."""
        pid = read_pid(self.pid_file)
        stopped: list[int] = []
        if pid is not None and "mariadbd" in cmdline(pid):
            stopped = terminate(pid, timeout=60.0)
        if self._proc is not None:
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=5)
            self._proc = None
        self.pid_file.unlink(missing_ok=True)
        remove_socket(self.socket)
        return stopped

    def admin_connect(self, database: str | None = None) -> pymysql.Connection[Any]:
        """A PyMySQL connection as root over the unix socket (autocommit on)."""
        import pymysql

        return pymysql.connect(
            unix_socket=str(self.socket),
            user="root",
            database=database,
            autocommit=True,
            charset="utf8mb4",
            connect_timeout=10,
        )
