"""``todobox-deploy exec --config FILE [--detached] -- COMMAND...``: one command on the target."""

from __future__ import annotations

import argparse
import secrets as pysecrets
import sys
import time
from pathlib import Path
from typing import Any

from todobox_deploy.engine.events import Stream

from .errors import (
    AuthenticationFailed,
    CommandCancelled,
    CommandKilled,
    ConfigProblem,
    HostKeyError,
    HostUnreachable,
    LinkLost,
    RemoteError,
)

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

    from .connection import SshConnection
    from .prompts import ask_passphrase_on_terminal, ask_trust_on_terminal

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
    try:
        conn.connect()
        for warning in conn.warnings:
            print(f"exec: warning: {warning}", file=sys.stderr)
        if args.detached:
            run_id = args.run_id or time.strftime("exec-%Y%m%dT%H%M%S-") + pysecrets.token_hex(3)
            print(f"exec: detached run id {run_id}", file=sys.stderr)
            return conn.run_detached(run_id, command, _sink)
        return conn.run(command, _sink)
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


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry for testing: ``python -m todobox_deploy.remote.exec_cli exec --config ...``."""
    parser = argparse.ArgumentParser(prog="todobox-deploy")
    add_exec_parser(parser.add_subparsers(dest="cmd", required=True))
    ns = parser.parse_args(argv)
    return int(ns.handler(ns))


if __name__ == "__main__":
    sys.exit(main())
