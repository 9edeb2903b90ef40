"""Bring the local sandbox "production host" up, report on it, restore its bug state, take it down.

Layout of the sandbox directory::

    sandbox.json   state (ports, commits, seeded users, the named state: see ``states``)
    deploy.toml    the generated deploy config
    ssh/           ThrowawaySshd (keys, known_hosts)         db/           ThrowawayMariaDB (datadir)
    git/todobox.git  bare origin (master = pre-fix + fix)    app/          deployed clone (+ .env, 0600)
    supervisor/    supervisord.conf, pid, socket             logs/app.log  gunicorn + Flask log
    backups/       where the wizard writes dumps             bin/          flask, gunicorn, supervisorctl
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from todobox_deploy.core.envfile import EnvFileError, password_in_env_text
from todobox_deploy.sandbox import appdb
from todobox_deploy.sandbox.defaults import DEFAULT_USERS, default_directory
from todobox_deploy.sandbox.deploy_toml import DeployTomlValues, render_deploy_toml
from todobox_deploy.sandbox.gitrepo import GitState, build_repos, lines_to_json, reset_repos
from todobox_deploy.sandbox.http import http_status
from todobox_deploy.sandbox.mariadb import ThrowawayMariaDB
from todobox_deploy.sandbox.ports import free_port, port_is_free
from todobox_deploy.sandbox.procs import SandboxError, cmdline, pid_alive, terminate, wait_gone
from todobox_deploy.sandbox.sshd import ThrowawaySshd
from todobox_deploy.sandbox.states import DEFAULT_STATE, STATES, SandboxState, state_named
from todobox_deploy.sandbox.supervisor import Supervisor

_STATE = "sandbox.json"
_STATE_VERSION = 1


@dataclass
class SandboxInfo:
    """Where everything is; ``to_json()`` is the machine-readable form (``sandbox up --json`` adds
    ``state``)."""

    directory: Path
    config: Path
    ssh_host: str
    ssh_port: int
    ssh_user: str
    identity_file: Path
    known_hosts: Path
    db_host: str
    db_port: int
    db_socket: Path
    db_name: str
    db_user: str
    app_url: str
    elapsed_s: float | None = None
    processes: dict[str, int | None] = field(default_factory=dict)  # name -> pid (None: not running)
    app_dir: Path | None = None
    app_log: Path | None = None
    state: str = DEFAULT_STATE  # the named state it was last put in (``states.STATES``)

    @property
    def dir(self) -> Path:
        return self.directory

    @property
    def running(self) -> bool:
        return bool(self.processes) and all(pid is not None for pid in self.processes.values())

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "config": str(self.config),
            "ssh": {
                "host": self.ssh_host,
                "port": self.ssh_port,
                "user": self.ssh_user,
                "identity_file": str(self.identity_file),
                "known_hosts": str(self.known_hosts),
            },
            "db": {
                "host": self.db_host,
                "port": self.db_port,
                "socket": str(self.db_socket),
                "name": self.db_name,
                "user": self.db_user,
            },
            "app_url": self.app_url,
            "dir": str(self.directory),
        }
        if self.elapsed_s is not None:
            out["elapsed_s"] = round(self.elapsed_s, 2)
        return out


class _Sandbox:
    """The parts of one sandbox directory (cheap to construct; starts nothing)."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.state_path = directory / _STATE
        self.bin_dir = directory / "bin"
        path = f"{self.bin_dir}:{os.environ.get('PATH', '/usr/local/bin:/usr/bin:/bin')}"
        self.sshd = ThrowawaySshd(directory / "ssh", session_env={"PATH": path})
        self.db = ThrowawayMariaDB(directory / "db")
        self.origin = directory / "git" / "todobox.git"
        self.app_dir = directory / "app"
        self.env_file = self.app_dir / ".env"
        self.app_log = directory / "logs" / "app.log"
        self.backups = directory / "backups"
        self.config = directory / "deploy.toml"
        self.ssh_config = directory / "ssh_config"
        self.state = self._load_state()
        sock = self.state.get("supervisor_socket")
        self.supervisor = Supervisor(directory / "supervisor", Path(sock) if sock else None)

    def _load_state(self) -> dict[str, Any]:
        try:
            state = json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            return {}
        return state if isinstance(state, dict) and state.get("version") == _STATE_VERSION else {}

    def save_state(self) -> None:
        self.state["version"] = _STATE_VERSION
        self.state["supervisor_socket"] = str(self.supervisor.socket)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state, indent=2) + "\n")
        tmp.replace(self.state_path)

    def git_line(self, line: str) -> GitState | None:
        """The commits of one code line (None for a sandbox built before the lines existed)."""
        git = self.state.get("git")
        lines = git.get("lines") if isinstance(git, dict) else None
        commits = lines.get(line) if isinstance(lines, dict) else None
        if not isinstance(commits, dict):
            return None
        return GitState(self.origin, self.app_dir, commits["prefix_commit"], commits["fix_commit"])

    def build_git(self) -> None:
        lines = build_repos(self.origin, self.app_dir)
        base = lines["base"]
        self.state["git"] = {
            "prefix_commit": base.prefix_commit,
            "fix_commit": base.fix_commit,
            "lines": lines_to_json(lines),
        }

    @property
    def named_state(self) -> SandboxState:
        return STATES.get(str(self.state.get("state")), STATES[DEFAULT_STATE])

    @property
    def app_port(self) -> int:
        return int(self.state.get("app_port") or 0)

    def processes(self) -> dict[str, int | None]:
        return {"sshd": self.sshd.pid, "mariadbd": self.db.pid, "supervisord": self.supervisor.pid}

    def info(self, elapsed: float | None = None) -> SandboxInfo:
        return SandboxInfo(
            directory=self.dir,
            config=self.config,
            ssh_host=self.sshd.host,
            ssh_port=self.sshd.port,
            ssh_user=self.sshd.user,
            identity_file=self.sshd.client_key,
            known_hosts=self.sshd.known_hosts,
            db_host=self.db.host,
            db_port=self.db.port,
            db_socket=self.db.socket,
            db_name=appdb.DB_NAME,
            db_user=appdb.DB_USER,
            app_url=f"http://127.0.0.1:{self.app_port}/users",
            elapsed_s=elapsed,
            processes=self.processes(),
            app_dir=self.app_dir,
            app_log=self.app_log,
            state=self.named_state.name,
        )

    # -- pieces ----------------------------------------------------------------------------------
    def password(self) -> str | None:
        """The app DB password, read back from the env file (the only place it is stored)."""
        try:
            return password_in_env_text(self.env_file.read_text(), "DATABASE_URL")
        except (OSError, EnvFileError):
            return None

    def write_env_file(self, password: str) -> None:
        """The app's env file; the password is URL-encoded in DATABASE_URL, so that any password (``@``,
        ``/``, ``%``, ``:``...) parses back to itself (``password()`` decodes it)."""
        user, secret = quote(appdb.DB_USER, safe=""), quote(password, safe="")
        url = f"mysql+pymysql://{user}:{secret}@127.0.0.1:{self.db.port}/{appdb.DB_NAME}"
        text = f"# todobox production settings: secret, not in git\nFLASK_APP=wsgi.py\nDATABASE_URL={url}\n"
        fd = os.open(self.env_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        self.env_file.chmod(0o600)

    def write_bin_wrappers(self) -> None:
        self.bin_dir.mkdir(parents=True, exist_ok=True)
        tools = {"flask": "flask", "gunicorn": "gunicorn", "supervisorctl": "supervisor.supervisorctl"}
        for name, module in tools.items():
            path = self.bin_dir / name
            path.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m {module} "$@"\n')
            path.chmod(0o755)

    def write_deploy_toml(self) -> None:
        self.ssh_config.touch()
        self.backups.mkdir(parents=True, exist_ok=True)
        values = DeployTomlValues(
            ssh_host=self.sshd.host,
            ssh_port=self.sshd.port,
            ssh_user=self.sshd.user,
            identity_file=self.sshd.client_key,
            known_hosts=self.sshd.known_hosts,
            ssh_config=self.ssh_config,
            app_dir=self.app_dir,
            python=sys.executable,
            env_file=self.env_file,
            supervisor_config=self.supervisor.config_path,
            app_port=self.app_port,
            app_log=self.app_log,
            db_log=self.db.log_path,
            db_port=self.db.port,
            backup_dir=self.backups,
            run_root=self.dir / "runs",
        )
        self.config.write_text(render_deploy_toml(values))

    def choose_app_port(self) -> None:
        port = self.app_port
        if self.supervisor.pid is None and (not port or not port_is_free(port)):
            self.state["app_port"] = free_port()

    def poke_app(self) -> int:
        """GET the user list once (so the app log shows what it does); return the HTTP status."""
        return http_status(f"http://127.0.0.1:{self.app_port}/users", timeout=20)


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / ".lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _resolve(directory: Path | None) -> Path:
    return Path(directory).expanduser().resolve() if directory else default_directory()


def _switch(sb: _Sandbox, target: SandboxState) -> None:
    """Put tables, git and the app into ``target`` (servers up, env file and supervisord config written).

    The app is restarted when the code it runs changes (another pre-fix commit) or must fail to boot.
    """
    before = sb.git_line(sb.named_state.line)
    line = sb.git_line(target.line)
    restart = line is None or before is None or before.prefix_commit != line.prefix_commit
    restart = restart or not target.app_up
    if restart and sb.supervisor.pid is not None:
        sb.supervisor.stop_program()
    if line is None:  # a sandbox from before the code lines: build them (a new clone: keep the env file)
        password = sb.password()
        sb.build_git()
        sb.save_state()
        if password:
            sb.write_env_file(password)
        line = sb.git_line(target.line)
        if line is None:
            raise SandboxError(f"the sandbox's git build has no code line {target.line!r}")
    appdb.restore_bug_state(sb.db, int(sb.state.get("users", 0)))
    if target.column or target.revision != appdb.BUG_REVISION:
        appdb.apply_fix_ddl(sb.db, target.column, target.index, target.revision)
    reset_repos(line, at_fix=target.at_fix)
    sb.state["state"] = target.name
    sb.save_state()
    _run_app(sb, target, restart, poke=True)


def _run_app(sb: _Sandbox, target: SandboxState, restart: bool, poke: bool = False) -> None:
    """Have supervisord run the app as ``target`` expects: serving, or given up on (it cannot boot)."""
    if target.app_up:
        sb.supervisor.start(sb.app_port)  # also starts the program if a test stopped it
        _await_running(sb)
        if poke:
            sb.poke_app()  # the app log shows what a request does in this state
    else:
        sb.supervisor.start_expecting_failure(sb.app_port, restart)


def _await_running(sb: _Sandbox, timeout: float = 10.0) -> None:
    """gunicorn listens before supervisord calls it RUNNING (``startsecs``): report the settled state."""
    deadline = time.monotonic() + timeout
    while sb.supervisor.program_state() == "STARTING" and time.monotonic() < deadline:
        time.sleep(0.05)


def sandbox_up(
    directory: Path | None = None, users: int = DEFAULT_USERS, reset: bool = False, state: str | None = None
) -> SandboxInfo:
    """Start (or just report) the sandbox; build it on first use or with ``reset``.

    ``state`` (a name from ``states.STATES``) puts it into that state, as ``sandbox_restore`` does; without
    it a new or reset sandbox is in the bug state and an existing one keeps its state. ``users`` is the
    number of seeded users when building (a switch keeps the count the sandbox was built with).
    """
    started = time.monotonic()
    target = state_named(state) if state is not None else None
    d = _resolve(directory)
    with _locked(d):
        sb = _Sandbox(d)
        sb.sshd.start()
        sb.db.start()
        rebuild = reset or not sb.state.get("built")
        password = None if rebuild else sb.password()
        password = password or secrets.token_urlsafe(24)
        appdb.create_database(sb.db, password)
        if rebuild:
            if sb.supervisor.pid is not None:
                sb.supervisor.stop_program()  # the app dir is about to be replaced
            sb.state["built"] = False
            sb.state.pop("state", None)
            sb.state["users"] = users
            sb.build_git()
        sb.write_env_file(password)
        sb.write_bin_wrappers()
        sb.choose_app_port()
        changed = sb.supervisor.write_config(sb.app_dir, sb.app_port, sb.app_log)
        sb.save_state()
        if changed and sb.supervisor.pid is not None:
            sb.supervisor.ctl("update")  # a sandbox from an older version: apply the program's settings
        if rebuild or target is not None:
            _switch(sb, target or STATES[DEFAULT_STATE])
        else:
            _run_app(sb, sb.named_state, restart=False)
        sb.write_deploy_toml()
        sb.state["built"] = True
        sb.save_state()
        return sb.info(time.monotonic() - started)


def sandbox_restore(directory: Path | None = None, state: str = DEFAULT_STATE) -> SandboxInfo:
    """Cheaply put a built sandbox into ``state`` (default: the bug state): tables, users, git, app."""
    started = time.monotonic()
    target = state_named(state)
    d = _resolve(directory)
    with _locked(d):
        sb = _Sandbox(d)
        if not sb.state.get("built") or not isinstance(sb.state.get("git"), dict):
            raise SandboxError(f"no sandbox in {d}: run `todobox-deploy sandbox up` first")
        sb.sshd.start()
        sb.db.start()
        password = sb.password() or secrets.token_urlsafe(24)
        appdb.create_database(sb.db, password)
        sb.write_env_file(password)
        _switch(sb, target)
        return sb.info(time.monotonic() - started)


def sandbox_status(directory: Path | None = None) -> SandboxInfo | None:
    """The sandbox's info (with live pids in ``processes``), or None when none was ever built there."""
    d = _resolve(directory)
    if not (d / _STATE).exists():
        return None
    sb = _Sandbox(d)
    return sb.info() if sb.state else None


_OUR_PROGRAMS = ("sshd", "mariadbd", "supervisord", "gunicorn")


def _ancestors() -> set[int]:
    mine = {os.getpid()}
    pid = os.getppid()
    while pid > 1 and pid not in mine:
        mine.add(pid)
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return mine


def _leftovers(directory: Path) -> list[int]:
    """Live sshd/mariadbd/supervisord/gunicorn processes whose command line names ``directory``.

    Every server the sandbox starts has the directory in its argv (config, datadir, pid file);
    an operator's ``tail -f DIR/logs/app.log`` is not ours and is left alone.
    """
    mine = _ancestors()
    needle = str(directory) + "/"
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in mine:
            continue
        pid = int(entry.name)
        line = cmdline(pid)
        if needle in line and any(p in line for p in _OUR_PROGRAMS) and pid_alive(pid):
            found.append(pid)
    return found


def sandbox_down(directory: Path | None = None) -> list[int]:
    """Stop every sandbox process by pid (supervisord and gunicorn, mariadbd, sshd); return the pids.

    Raises SandboxError if a process of the sandbox is still alive afterwards.
    """
    d = _resolve(directory)
    if not d.exists():
        return []
    with _locked(d):
        sb = _Sandbox(d)
        stopped = sb.supervisor.stop() + sb.db.stop() + sb.sshd.stop()
        for pid in _leftovers(d):
            stopped += terminate(pid, timeout=5.0)
        left = wait_gone(stopped, 5.0) + _leftovers(d)
        if left:
            raise SandboxError(f"sandbox processes still alive after down: {sorted(set(left))}")
        return stopped
