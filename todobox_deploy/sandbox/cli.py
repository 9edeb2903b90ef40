"""``todobox-deploy sandbox up|status|down``: the local demo "production host"."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from todobox_deploy.sandbox.defaults import DEFAULT_USERS, default_directory
from todobox_deploy.sandbox.states import DEFAULT_STATE, STATES

if TYPE_CHECKING:
    from todobox_deploy.sandbox.manager import SandboxInfo

# The manager (and what it imports) loads when a sandbox command runs: every other command builds this
# parser too, and the wizard's first frame waits for it (tests/bench_first_frame.py).


def add_sandbox_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``sandbox`` with its ``up``, ``status`` and ``down`` sub-commands."""
    sandbox: argparse.ArgumentParser = subparsers.add_parser(
        "sandbox", help="the local sandbox production host (sshd, MariaDB, app)"
    )
    sandbox.set_defaults(handler=run_sandbox_command)
    actions = sandbox.add_subparsers(dest="sandbox_command", required=True)
    dir_help = f"sandbox directory (default: {default_directory()})"

    up = actions.add_parser("up", help="start the sandbox (build the broken state on first use)")
    up.add_argument("--dir", type=Path, default=None, help=dir_help)
    users_help = f"seeded users when building (first use, --reset; default {DEFAULT_USERS})"
    up.add_argument("--users", type=int, default=DEFAULT_USERS, help=users_help)
    up.add_argument("--reset", action="store_true", help="rebuild the database and git state")
    state_help = (
        f"put the sandbox into this state (restoring tables, git and app even if it is in it already); "
        f"default: {DEFAULT_STATE} for a new or reset sandbox, else keep the current state. "
        + "; ".join(f"{s.name}: {s.summary}" for s in STATES.values())
    )
    up.add_argument("--state", choices=list(STATES), default=None, metavar="NAME", help=state_help)
    up.add_argument("--json", action="store_true", help="print the sandbox info as JSON")

    status = actions.add_parser("status", help="show the sandbox and which of its processes run")
    status.add_argument("--dir", type=Path, default=None, help=dir_help)
    status.add_argument("--json", action="store_true", help="print the sandbox info as JSON")

    down = actions.add_parser("down", help="stop every sandbox process (keeps the files)")
    down.add_argument("--dir", type=Path, default=None, help=dir_help)
    return sandbox


def _http_status(url: str) -> str:
    from todobox_deploy.sandbox.http import http_status

    try:
        code = http_status(url)
    except OSError as exc:
        return f"not answering ({exc})"
    return f"HTTP {code}" + (" (the Unknown column bug)" if code == 500 else "")


def _describe(info: SandboxInfo) -> str:
    pids = ", ".join(f"{name} {pid or 'down'}" for name, pid in info.processes.items())
    return "\n".join(
        [
            f"  state   {info.state}: {STATES[info.state].summary}",
            f"  ssh     {info.ssh_user}@{info.ssh_host}:{info.ssh_port}  key {info.identity_file}",
            f"          known_hosts {info.known_hosts}",
            f"  db      {info.db_user}@{info.db_host}:{info.db_port}/{info.db_name}  socket {info.db_socket}",
            f"  app     {info.app_url}  {_http_status(info.app_url)}",
            f"  log     {info.app_log}",
            f"  pids    {pids}",
            f"  config  {info.config}",
            f"  deploy: todobox-deploy run --config {info.config}",
        ]
    )


def _up(args: argparse.Namespace) -> int:
    if args.users < 0:
        print("todobox-deploy sandbox: --users must be 0 or more", file=sys.stderr)
        return 2
    if not args.json:
        print("bringing the sandbox up ...", flush=True)
    from todobox_deploy.sandbox.manager import sandbox_up

    info = sandbox_up(args.dir, users=args.users, reset=args.reset, state=args.state)
    if args.json:
        print(json.dumps({**info.to_json(), "state": info.state}, indent=2))
    else:
        print(f"sandbox up in {info.elapsed_s or 0:.1f} s: {info.directory}")
        print(_describe(info))
    return 0


def _status(args: argparse.Namespace) -> int:
    from todobox_deploy.sandbox.manager import sandbox_status

    info = sandbox_status(args.dir)
    if info is None:
        where = args.dir or default_directory()
        print(f"no sandbox in {where}: run `todobox-deploy sandbox up`", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({**info.to_json(), "state": info.state, "processes": info.processes}, indent=2))
    else:
        print(f"sandbox in {info.directory}: {'running' if info.running else 'NOT fully running'}")
        print(_describe(info))
    return 0 if info.running else 3


def _down(args: argparse.Namespace) -> int:
    from todobox_deploy.sandbox.manager import sandbox_down

    pids = sandbox_down(args.dir)
    where = args.dir or default_directory()
    if pids:
        print(f"sandbox in {where} stopped; ended pids {', '.join(map(str, sorted(pids)))}")
    else:
        print(f"sandbox in {where}: nothing was running")
    return 0


def run_sandbox_command(args: argparse.Namespace) -> int:
    """Dispatch ``sandbox up|status|down``; returns the exit status (1 on a sandbox error)."""
    from todobox_deploy.sandbox.procs import SandboxError

    handlers = {"up": _up, "status": _status, "down": _down}
    try:
        return handlers[args.sandbox_command](args)
    except SandboxError as exc:
        print(f"todobox-deploy sandbox: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # e.g. `sandbox status | head`
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        return 0
    except KeyboardInterrupt:
        print("todobox-deploy sandbox: interrupted", file=sys.stderr)
        return 130
