"""``todobox-deploy exec --config FILE [--detached] -- COMMAND...``: one command on the target."""

from __future__ import annotations

import argparse
import contextlib
import getpass
import os
import secrets as pysecrets
import shlex
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from todobox_deploy.core.streams import Stream
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

if TYPE_CHECKING:
    from todobox_deploy.config import DeployConfig
    from todobox_deploy.remote.connection import SshConnection
    from todobox_deploy.remote.secrets import Secrets

CONNECTION_FAILED = 255


def add_exec_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "exec",
        help="run one command on the target over SSH and exit with its exit code",
        description="Run COMMAND on the deploy target. Exit code = the remote exit code; 255 when the "
        "connection, host key or authentication fails.",
    )
    p.add_argument("--config", required=True, type=Path, help="deploy config (TOML)")
    p.add_argument(
        "--detached",
        action="store_true",
        help="run detached on the host (survives link drops; output re-attached by offset)",
    )
    p.add_argument("--run-id", help="run id for --detached (default: generated)")
    p.add_argument(
        "--app",
        action="store_true",
        help="run in the app's directory; `flask ...` also gets the app's env file and FLASK_APP",
    )
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    p.set_defaults(handler=run_exec_command)  # cli.main dispatches on `handler`
    return p


def _sink(stream: Stream, lines: list[str]) -> None:
    out = sys.stderr if stream != "stdout" else sys.stdout
    out.write("".join(line + "\n" for line in lines))
    out.flush()


def run_exec_command(args: argparse.Namespace) -> int:
    from todobox_deploy.config import ConfigError, load_config
    from todobox_deploy.remote.connection import SshConnection
    from todobox_deploy.remote.prompts import ask_passphrase_on_terminal, ask_trust_on_terminal

    argv = list(args.command)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        print("exec: no command given (usage: exec --config FILE -- COMMAND...)", file=sys.stderr)
        return 2
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        print(f"exec: {exc}", file=sys.stderr)
        return 2
    command: list[str] | str = argv
    if args.app:
        from todobox_deploy.engine.flask_cli import app_command

        command = app_command(cfg.app, argv)
    conn = SshConnection(
        cfg.target, confirm_host_key=ask_trust_on_terminal, passphrase=ask_passphrase_on_terminal
    )
    started = time.monotonic()
    code: int | None = None
    try:
        conn.connect()
        for warning in conn.warnings:
            print(f"exec: warning: {warning}", file=sys.stderr)
        secrets = _secrets(cfg, conn)
        if args.detached:
            run_id = args.run_id or time.strftime("exec-%Y%m%dT%H%M%S-") + pysecrets.token_hex(3)
            print(f"exec: detached run id {run_id}", file=sys.stderr)
            code = conn.run_detached(run_id, command, _sink, secrets=secrets)
        else:
            code = conn.run(command, _sink, secrets=secrets)
        return code
    except (HostKeyError, HostUnreachable, AuthenticationFailed, ConfigProblem, LinkLost) as exc:
        print(f"exec: {exc}", file=sys.stderr)
        return CONNECTION_FAILED
    except CommandKilled as exc:
        print(f"exec: {exc}", file=sys.stderr)
        return CONNECTION_FAILED
    except CommandCancelled as exc:
        print(f"exec: {exc}", file=sys.stderr)
        return 130
    except RemoteError as exc:
        print(f"exec: {exc}", file=sys.stderr)
        return CONNECTION_FAILED
    except KeyboardInterrupt:
        print("exec: interrupted", file=sys.stderr)
        return 130
    finally:
        conn.close()
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
        print(f"exec: recorded in the open deploy session {open_session.path}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry for testing: ``python -m todobox_deploy.exec_cli exec --config ...``."""
    parser = argparse.ArgumentParser(prog="todobox-deploy")
    add_exec_parser(parser.add_subparsers(dest="cmd", required=True))
    ns = parser.parse_args(argv)
    return int(ns.handler(ns))


if __name__ == "__main__":
    sys.exit(main())
