"""One deploy session: the single SSH connection, the DB password and the secrets every phase shares.

Phases run host commands through :meth:`DeploySession.run` and :meth:`DeploySession.capture`: every byte
they return is redacted with the session's secrets, and each command is recorded (what, exit code,
seconds) for the journal.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from todobox_deploy.config import DatabaseConfig, DeployConfig
from todobox_deploy.core.streams import OutputSink
from todobox_deploy.engine.credentials import CredentialsError, resolve_password

if TYPE_CHECKING:  # paramiko and PyMySQL load lazily: start-up stays fast
    from todobox_deploy.remote.batch import StepResult
    from todobox_deploy.remote.connection import CommandResult, SshConnection
    from todobox_deploy.remote.secrets import Secrets


@dataclass(frozen=True)
class CommandRecord:
    """One host command a phase ran: for the journal and the report."""

    command: str
    exit_code: int | None  # None: no exit code (killed, link lost, cancelled)
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {"command": self.command, "exit_code": self.exit_code, "seconds": round(self.seconds, 3)}


def display_of(argv: Sequence[str] | str, display: str | None = None) -> str:
    """What the journal shows for a command: the caller's title, the argv, or the start of a script."""
    if display:
        return display
    text = argv if isinstance(argv, str) else shlex.join(argv)
    return text if len(text) <= 160 else text[:157] + "..."


class DeploySession:
    """Holds what phases share; connects on first use and reuses the connection afterwards."""

    def __init__(
        self,
        config: DeployConfig,
        *,
        connection: SshConnection | None = None,
        connection_factory: Callable[[], SshConnection] | None = None,
        prompt_password: Callable[[str], str] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        from todobox_deploy.remote.secrets import Secrets

        self.config = config
        self.secrets: Secrets = Secrets()
        self._connection = connection
        self._factory = connection_factory
        self._prompt = prompt_password
        self._environ = os.environ if environ is None else environ
        self._password: str | None = None
        self._admin_password: str | None = None
        self._lock = threading.Lock()
        self.commands: list[CommandRecord] = []
        self.on_reconnect: Callable[[str], None] | None = None
        if connection is not None:
            self._watch(connection)

    @property
    def environ(self) -> Mapping[str, str]:
        """The local environment password sources are read from (``password_env`` keys)."""
        return self._environ

    def _watch(self, conn: SshConnection) -> None:
        conn.on_reconnect = self._reconnected

    def _reconnected(self, reason: str) -> None:
        if self.on_reconnect is not None:
            self.on_reconnect(reason)

    @property
    def connection(self) -> SshConnection:
        with self._lock:
            if self._connection is None:
                if self._factory is None:
                    from todobox_deploy.remote.connection import SshConnection

                    conn = SshConnection(self.config.target)
                else:
                    conn = self._factory()
                self._watch(conn)
                conn.connect()
                self._connection = conn
            return self._connection

    # -- commands ---------------------------------------------------------------------------

    def _timed(self, display: str, call: Callable[[], int]) -> int:
        start = time.monotonic()
        code: int | None = None
        try:
            code = call()
            return code
        finally:
            self.commands.append(CommandRecord(display, code, time.monotonic() - start))

    def run(
        self,
        argv: Sequence[str] | str,
        sink: OutputSink,
        *,
        cancel: threading.Event | None = None,
        stdin: bytes | None = None,
        timeout: float | None = None,
        display: str | None = None,
    ) -> int:
        """Run a host command, its output redacted into ``sink``; recorded for the journal."""
        conn = self.connection
        return self._timed(
            display_of(argv, display),
            lambda: conn.run(argv, sink, cancel=cancel, stdin=stdin, secrets=self.secrets, timeout=timeout),
        )

    def capture(
        self,
        argv: Sequence[str] | str,
        *,
        stdin: bytes | None = None,
        timeout: float | None = 60.0,
        display: str | None = None,
        record: bool = True,
    ) -> CommandResult:
        """Run a host command with small output and return it whole (redacted)."""
        conn = self.connection
        result: list[CommandResult] = []

        def call() -> int:
            result.append(conn.capture(argv, stdin=stdin, secrets=self.secrets, timeout=timeout))
            return result[0].exit_status

        if record:
            self._timed(display_of(argv, display), call)
        else:
            call()
        return result[0]

    def capture_steps(
        self,
        steps: Sequence[tuple[str, Sequence[str] | str]],
        *,
        stop_on_failure: bool = True,
        timeout: float | None = 60.0,
        cancel: threading.Event | None = None,
    ) -> list[StepResult]:
        """Run ``(display, argv or script)`` steps in one round trip (see remote.batch); each step that ran
        is recorded with its own exit code and time on the host."""
        from todobox_deploy.remote.batch import capture_steps

        conn = self.connection
        try:
            results = capture_steps(
                conn,
                [argv for _, argv in steps],
                secrets=self.secrets,
                stop_on_failure=stop_on_failure,
                timeout=timeout,
                cancel=cancel,
            )
        except BaseException:
            self.commands.append(CommandRecord(display_of(steps[0][1], steps[0][0]), None, 0.0))
            raise
        for (display, argv), result in zip(steps, results, strict=False):
            self.commands.append(CommandRecord(display_of(argv, display), result.exit_status, result.seconds))
        return results

    def run_detached(
        self,
        run_id: str,
        argv: Sequence[str] | str,
        sink: OutputSink,
        *,
        cancel: threading.Event | None = None,
        stdin: bytes | None = None,
        display: str | None = None,
    ) -> int:
        """Run a command detached on the host (survives a dropped link), following its log."""
        conn = self.connection
        return self._timed(
            display_of(argv, display) + f" (detached run {run_id})",
            lambda: conn.run_detached(run_id, argv, sink, cancel=cancel, stdin=stdin, secrets=self.secrets),
        )

    def take_commands(self) -> list[CommandRecord]:
        """The commands recorded since the last call (the flow calls it once per phase)."""
        taken, self.commands = self.commands, []
        return taken

    # -- files and database -----------------------------------------------------------------

    def read_remote_file(self, path: str) -> str:
        """Read a small file on the target; its content is never logged."""
        result = self.connection.capture(["cat", "--", path])
        if result.exit_status != 0:
            raise FileNotFoundError(f"cannot read {path} on the target: {result.stderr.strip()}")
        return result.stdout

    def db_password(self) -> str:
        """The DB password, found once per session and registered for redaction (raw and URL-encoded)."""
        if self._password is None:
            password = resolve_password(
                self.config.database,
                self.config.app,
                environ=self._environ,
                read_remote_file=self.read_remote_file,
                prompt=self._prompt,
            )
            self.secrets.add(password)
            self._password = password
        return self._password

    def admin_database(self) -> DatabaseConfig | None:
        """``[database]`` as the optional privileged account (``admin_user``), or None when not configured."""
        db = self.config.database
        if not db.admin_user:
            return None
        return dataclasses.replace(
            db,
            user=db.admin_user,
            password_env=db.admin_password_env,
            password_env_file_key=db.admin_password_env_file_key,
            password_prompt=db.admin_password_prompt,
        )

    def admin_password(self) -> str:
        """The privileged account's password from its sources (never a prompt during a phase), registered
        for redaction. Raises CredentialsError naming what was tried."""
        admin = self.admin_database()
        if admin is None:
            raise CredentialsError("no [database] admin_user is configured")
        if self._admin_password is None:
            password = resolve_password(
                dataclasses.replace(admin, password_prompt=False),
                self.config.app,
                environ=self._environ,
                read_remote_file=self.read_remote_file,
                prompt=None,
            )
            self.secrets.add(password)
            self._admin_password = password
        return self._admin_password

    def open_db(self, *, read_timeout: float = 30) -> Any:
        """A PyMySQL connection to the app's database through the SSH connection (no local port)."""
        return self.connection.open_mysql(self.config.database, self.db_password(), read_timeout=read_timeout)

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None
