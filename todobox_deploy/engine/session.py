"""One deploy session: the single SSH connection, the DB password and the secrets every phase shares."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from todobox_deploy.config import DeployConfig
from todobox_deploy.engine.credentials import resolve_password

if TYPE_CHECKING:  # paramiko and PyMySQL load lazily: start-up stays fast
    from todobox_deploy.remote.connection import SshConnection
    from todobox_deploy.remote.secrets import Secrets


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
        self._lock = threading.Lock()

    @property
    def connection(self) -> SshConnection:
        with self._lock:
            if self._connection is None:
                if self._factory is None:
                    from todobox_deploy.remote.connection import SshConnection

                    conn = SshConnection(self.config.target)
                else:
                    conn = self._factory()
                conn.connect()
                self._connection = conn
            return self._connection

    def read_remote_file(self, path: str) -> str:
        """Read a small file on the target; its content is never logged."""
        result = self.connection.capture(["cat", "--", path])
        if result.exit_status != 0:
            raise FileNotFoundError(f"cannot read {path} on the target: {result.stderr.strip()}")
        return result.stdout

    def db_password(self) -> str:
        """The DB password, found once per session and registered for redaction."""
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

    def open_db(self, *, read_timeout: float = 30) -> Any:
        """A PyMySQL connection to the app's database through the SSH connection (no local port)."""
        return self.connection.open_mysql(self.config.database, self.db_password(), read_timeout=read_timeout)

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None
