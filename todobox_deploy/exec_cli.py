"""``todobox-deploy exec --config FILE [--detached] -- COMMAND...``: one command on the target, its output
passed through byte for byte (``--attach RUN_ID`` re-attaches to a detached run)."""

from __future__ import annotations

import argparse
import contextlib
import getpass
import os
import shlex
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from todobox_deploy.config import DeployConfig
    from todobox_deploy.core.streams import Stream
    from todobox_deploy.remote.connection import SshConnection
    from todobox_deploy.remote.secrets import Secrets

CONNECTION_FAILED = 255
SIGPIPE_EXIT = 141  # 128 + SIGPIPE: what a shell reports for a writer whose reader went away


def add_exec_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "exec",
        help="run one command on the target over SSH and exit with its exit code",
        description="Run COMMAND on the deploy target. Its stdout and stderr reach this command's stdout and "
        "stderr byte for byte (known secrets masked, unless --no-redact). Exit code = the remote exit code; "
        "255 when the connection, host key or authentication fails or the command was killed by a signal.",
    )
    p.add_argument("--config", required=True, type=Path, help="deploy config (TOML)")
    p.add_argument(
        "--detached",
        action="store_true",
        help="run detached on the host (survives link drops; output re-attached by offset)",
    )
    p.add_argument("--run-id", help="run id for --detached (default: generated)")
    p.add_argument(
        "--attach", metavar="RUN_ID", help="re-attach to a detached run instead of running a command"
    )
    p.add_argument("--offset", type=int, default=0, help="with --attach: the byte of its output to start at")
    p.add_argument(
        "--app",
        action="store_true",
        help="run in the app's directory; `flask ...` also gets the app's env file and FLASK_APP",
    )
    p.add_argument(
        "--no-redact",
        action="store_true",
        help="pass the output through unchanged, without masking the DB password (for binary output)",
    )
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    p.set_defaults(handler=run_exec_command)  # cli.main dispatches on `handler`
    return p


def _say(message: str) -> None:
    """One line of exec's own on stderr (a closed stderr is not an error)."""
    with contextlib.suppress(OSError):
        print(message, file=sys.stderr, flush=True)


class _Output:
    """The remote output, written to this process's stdout and stderr byte for byte.

    A closed pipe (``exec ... | head -1``) is not an error: that stream's output is dropped from then on
    (the descriptor points at /dev/null, so that exiting flushes quietly), and a closed stdout sets
    ``stdout_closed``: the remote command is told, as ``ssh`` tells it (at the first write that fails,
    as with ``ssh``), and gets SIGPIPE at its next write to stdout.
    """

    def __init__(self) -> None:
        self.stdout_closed = threading.Event()
        self._closed: set[int] = set()

    def __call__(self, stream: Stream, data: bytes) -> None:
        fd = 1 if stream == "stdout" else 2
        if fd in self._closed:
            return
        text = sys.stdout if fd == 1 else sys.stderr
        if text is None:  # started with that descriptor closed: as ssh does, as if it were /dev/null
            self._closed.add(fd)
            return
        try:
            text.flush()  # exec's own lines first
            text.buffer.write(data)
            text.buffer.flush()
        except OSError as exc:  # EPIPE mostly; EBADF, ENOSPC: that output is gone either way
            if not isinstance(exc, BrokenPipeError):
                _say(f"exec: cannot write to {stream}: {exc.strerror or exc}")
            self._closed.add(fd)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, fd)
            os.close(devnull)
            if fd == 1:
                self.stdout_closed.set()


def run_exec_command(args: argparse.Namespace) -> int:
    # Loaded here, not with the module: the whole parser (for --help) builds this one (cli.build_parser).
    import secrets as pysecrets

    from todobox_deploy.config import ConfigError, load_config
    from todobox_deploy.remote.connection import SshConnection
    from todobox_deploy.remote.detached import FollowStopped
    from todobox_deploy.remote.errors import (
        AuthenticationFailed,
        CommandCancelled,
        CommandKilled,
        ConfigProblem,
        HostKeyError,
        HostUnreachable,
        LinkLost,
        RemoteError,
    )
    from todobox_deploy.remote.prompts import ask_passphrase_on_terminal, ask_trust_on_terminal

    argv = list(args.command)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if bool(argv) == bool(args.attach):
        _say("exec: give a command or --attach RUN_ID (usage: exec --config FILE -- COMMAND...)")
        return 2
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        _say(f"exec: {exc}")
        return 2
    command: list[str] | str = argv
    if args.app:
        from todobox_deploy.engine.flask_cli import app_command

        command = app_command(cfg.app, argv)
    conn = SshConnection(
        cfg.target, confirm_host_key=ask_trust_on_terminal, passphrase=ask_passphrase_on_terminal
    )
    out = _Output()
    started = time.monotonic()
    code: int | None = None

    def info(message: str) -> None:
        _say(f"exec: {message}")

    try:
        conn.connect()
        for warning in conn.warnings:
            _say(f"exec: warning: {warning}")
        secrets = None if args.no_redact else _secrets(cfg, conn)
        closed = out.stdout_closed
        if args.attach:
            code = conn.attach_bytes(
                args.attach, out, info=info, offset=args.offset, secrets=secrets, stdout_closed=closed
            )
        elif args.detached:
            run_id = args.run_id or time.strftime("exec-%Y%m%dT%H%M%S-") + pysecrets.token_hex(3)
            info(f"detached run id {run_id}")
            code = conn.run_detached_bytes(
                run_id, command, out, info=info, secrets=secrets, stdout_closed=closed
            )
        else:
            code = conn.run_bytes(command, out, secrets=secrets, stdout_closed=closed)
        return code
    except FollowStopped as stopped:
        again = (
            f"todobox-deploy exec --config {args.config} --attach {stopped.run_id} --offset {stopped.offset}"
        )
        info(f"{stopped}: {again}")
        return SIGPIPE_EXIT
    except (HostKeyError, HostUnreachable, AuthenticationFailed, ConfigProblem, LinkLost) as exc:
        info(str(exc))
        return CONNECTION_FAILED
    except CommandKilled as exc:
        if not out.stdout_closed.is_set():  # else: SIGPIPE after its reader went away, as expected (ssh: 255)
            info(str(exc))
        return CONNECTION_FAILED
    except CommandCancelled as exc:
        info(str(exc))
        return 130
    except RemoteError as exc:
        info(str(exc))
        return CONNECTION_FAILED
    except KeyboardInterrupt:
        info("interrupted")
        return 130
    finally:
        conn.close()
        if argv:
            _journal(cfg, args, argv, code, time.monotonic() - started)


def _secrets(cfg: DeployConfig, conn: SshConnection) -> Secrets:
    """The DB password, when it can be found without asking, so that the output is redacted too."""
    from todobox_deploy.engine.credentials import resolve_password
    from todobox_deploy.remote.secrets import Secrets

    def read(path: str) -> str:
        result = conn.capture(["cat", "--", path])
        if result.exit_status != 0:
            raise FileNotFoundError(path)
        return result.stdout

    secrets = Secrets()
    with contextlib.suppress(Exception):  # no password found: nothing known to redact
        secrets.add(
            resolve_password(cfg.database, cfg.app, environ=os.environ, read_remote_file=read, prompt=None)
        )
    return secrets


def _journal(
    cfg: DeployConfig, args: argparse.Namespace, argv: list[str], code: int | None, seconds: float
) -> None:
    """Work done by hand while a deploy session for this host is open goes into that session's journal."""
    from todobox_deploy.engine.launch import sessions_root
    from todobox_deploy.engine.resume import find_unfinished
    from todobox_deploy.journal.journal import Journal

    with contextlib.suppress(Exception):  # the command already ran: a journal problem must not hide its code
        open_session = find_unfinished(sessions_root(), cfg.target.host, str(cfg.source or ""))
        if open_session is None:
            return
        journal = Journal.open_existing(open_session.path, operator=getpass.getuser())
        journal.record(
            "exec_command",
            command=shlex.join(argv),
            exit_code=code,
            seconds=round(seconds, 3),
            app=bool(args.app),
            detached=bool(args.detached),
        )
        _say(f"exec: recorded in the open deploy session {open_session.path}")


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry for testing: ``python -m todobox_deploy.exec_cli exec --config ...``."""
    parser = argparse.ArgumentParser(prog="todobox-deploy")
    add_exec_parser(parser.add_subparsers(dest="cmd", required=True))
    ns = parser.parse_args(argv)
    return int(ns.handler(ns))


if __name__ == "__main__":
    sys.exit(main())
