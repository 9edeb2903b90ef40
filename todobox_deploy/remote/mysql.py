"""MySQL credentials over stdin (never argv/env), and PyMySQL over an SSH direct-tcpip channel.

``mysql_command`` returns an argv whose first option is ``--defaults-extra-file=/dev/stdin`` plus the
option-file bytes to send as the channel's stdin. Because stdin carries the option file, such a command
cannot also read SQL from stdin: use ``-e``, or ``mysql_script_with_input`` which reads the option file
through fd 3 and leaves stdin (or a file on the host) for the data.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from todobox_deploy.config import DatabaseConfig

from . import quoting
from .errors import RemoteError
from .secrets import Secrets

if TYPE_CHECKING:
    import paramiko
    import pymysql.connections

SSH_DB_HOST = "db-via-ssh.invalid"  # a direct TCP connect by mistake fails instead of reaching a local DB


def _opt_value(value: str) -> str:
    quoting.check_arg(value)
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{escaped}"'


def option_file(db: DatabaseConfig, password: str) -> bytes:
    """A ``[client]`` option file with user, password, host and port (read by mysql and mysqldump)."""
    lines = [
        "[client]",
        f"user={_opt_value(db.user)}",
        f"password={_opt_value(password)}",
        f"host={_opt_value(db.host)}",
        f"port={int(db.port)}",
    ]
    return ("\n".join(lines) + "\n").encode("utf-8")


def mysql_command(
    db: DatabaseConfig,
    password: str,
    args: Sequence[str] = (),
    *,
    tool: Literal["client", "dump"] = "client",
    database: bool = True,
) -> tuple[list[str], bytes]:
    """(argv, stdin) for ``mysql``/``mysqldump``; pass both to ``SshConnection.run(..., stdin=...)``.

    The database name goes last (after ``args``), refused if it starts with '-'.
    """
    exe = db.client if tool == "client" else db.dump
    argv = [exe, "--defaults-extra-file=/dev/stdin", *(quoting.check_arg(a) for a in args)]
    if database:
        argv.append(quoting.operand(db.name, "database name"))
    return argv, option_file(db, password)


def mysql_script_with_input(
    db: DatabaseConfig, password: str, args: Sequence[str] = (), *, input_file: str | None = None
) -> tuple[str, bytes]:
    """(shell text, stdin) for a ``mysql`` that also reads SQL: the option file arrives on fd 3.

    With ``input_file`` (a path on the host; ``.gz`` is decompressed) the SQL comes from that file;
    otherwise the caller cannot send SQL on stdin (it carries the option file) and must use ``-e``.
    """
    argv = [
        db.client,
        "--defaults-extra-file=/dev/fd/3",
        *(quoting.check_arg(a) for a in args),
        quoting.operand(db.name, "database name"),
    ]
    if input_file is None:
        return f"{quoting.join(argv)} 3<&0 < /dev/null", option_file(db, password)
    quoting.operand(input_file, "input file")
    if input_file.endswith(".gz"):
        reader = quoting.join(["gzip", "-dc", "--", input_file])
        return f"{{ {reader} | {quoting.join(argv)}; }} 3<&0", option_file(db, password)
    return f"{quoting.join(argv)} 3<&0 < {shlex.quote(input_file)}", option_file(db, password)


def open_mysql_over_channel(
    transport: paramiko.Transport,
    db: DatabaseConfig,
    password: str,
    *,
    read_timeout: float,
    write_timeout: float,
    connect_timeout: float,
) -> pymysql.connections.Connection:
    import paramiko
    import pymysql

    secrets = Secrets([password])
    try:
        chan = transport.open_channel(
            "direct-tcpip", (db.host, db.port), ("127.0.0.1", 0), timeout=connect_timeout
        )
    except paramiko.ChannelException as exc:
        raise RemoteError(
            f"the target cannot connect to the database at {db.host}:{db.port} "
            f"({exc.text}); is MySQL running and listening there?"
        ) from None
    except (paramiko.SSHException, OSError, EOFError) as exc:
        from .errors import LinkLost

        raise LinkLost(f"could not open a channel to the database: {exc}") from None
    conn = pymysql.connect(
        host=SSH_DB_HOST,
        port=db.port,
        user=db.user,
        password=password.encode("utf-8"),  # PyMySQL would encode a str as latin-1
        database=db.name,
        defer_connect=True,
        connect_timeout=int(connect_timeout),
        read_timeout=int(read_timeout),
        write_timeout=int(write_timeout),
        charset="utf8mb4",
    )
    try:
        conn.connect(sock=chan)  # type: ignore[arg-type]  # a Channel quacks like a socket here
    except pymysql.MySQLError as exc:
        chan.close()
        raise RemoteError(
            f"database login to {db.name} as {db.user} via SSH failed: {secrets.redact(str(exc))}"
        ) from None
    return conn
