"""The ``todobox-deploy`` command line: run the wizard, bring up the sandbox, run one remote command."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from todobox_deploy import __version__
from todobox_deploy.config import ConfigError, DeployConfig, load_config

EXIT_CONFIG = 2
EXIT_CONNECTION = 255


def _session_dir(config: DeployConfig) -> Path:
    """Where this session's journal and transcripts go (under the user's state directory)."""
    import platformdirs

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    host = config.target.host.replace("/", "_")
    return platformdirs.user_state_path("todobox-deploy") / "sessions" / f"{stamp}-{host}"


def _prompt_password(prompt: str) -> str:
    return getpass.getpass(prompt)


def run_wizard(config: DeployConfig, *, operator: str, session_dir: Path | None = None) -> int:
    """Connect (verifying the host key), then open the Textual wizard on the checklist."""
    from todobox_deploy.checklist.data import CHECKLIST
    from todobox_deploy.engine.credentials import CredentialsError
    from todobox_deploy.engine.runner import DeployRunner
    from todobox_deploy.engine.session import DeploySession
    from todobox_deploy.journal.journal import Journal
    from todobox_deploy.remote.connection import SshConnection
    from todobox_deploy.remote.errors import RemoteError
    from todobox_deploy.remote.prompts import ask_passphrase_on_terminal, ask_trust_on_terminal
    from todobox_deploy.tui.app import make_app

    interactive = sys.stdin.isatty()
    conn = SshConnection(
        config.target,
        confirm_host_key=ask_trust_on_terminal if interactive else None,
        passphrase=ask_passphrase_on_terminal if interactive else None,
    )
    try:
        conn.connect()
    except RemoteError as exc:
        print(f"todobox-deploy: {exc}", file=sys.stderr)
        return EXIT_CONNECTION
    prompt = _prompt_password if interactive else None
    session = DeploySession(config, connection=conn, prompt_password=prompt)
    try:  # find the DB password now, while a prompt can still use the terminal
        session.db_password()
    except (CredentialsError, RemoteError, OSError) as exc:
        print(f"todobox-deploy: {exc}", file=sys.stderr)
        session.close()
        return EXIT_CONFIG
    directory = session_dir or _session_dir(config)
    journal = Journal(directory / "journal.jsonl", operator=operator, host=config.target.host)
    journal.record("session_started", config=str(config.source or ""), version=__version__)
    runner = DeployRunner(session, transcript_dir=directory / "transcripts")
    app = make_app(CHECKLIST, runner, config=config, operator=operator, journal=journal)
    try:
        code = app.run()
    finally:
        runner.close()
        journal.record("session_ended")
    print(f"journal and transcripts: {directory}")
    return code or 0


def _cmd_run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"todobox-deploy: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    return run_wizard(config, operator=args.operator)


def _cmd_demo(args: argparse.Namespace) -> int:
    from todobox_deploy.sandbox.manager import sandbox_up

    info = sandbox_up(args.dir, users=args.users, reset=args.reset)
    print(f"sandbox ready in {info.dir} (config {info.config})")
    code = run_wizard(load_config(info.config), operator=args.operator)
    print(f"the sandbox keeps running; stop it with: todobox-deploy sandbox down --dir {info.dir}")
    return code


def _cmd_checklist(args: argparse.Namespace) -> int:
    from todobox_deploy.checklist.data import CHECKLIST
    from todobox_deploy.checklist.model import ChecklistNode

    def show(node: ChecklistNode, depth: int) -> None:
        print(f"{'  ' * depth}{node.id:<40} {node.kind.name.lower():<10} {node.title}")
        for child in node.children:
            show(child, depth + 1)

    for child in CHECKLIST.children:
        show(child, 0)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from todobox_deploy.remote.exec_cli import add_exec_parser
    from todobox_deploy.sandbox.cli import add_sandbox_parser

    parser = argparse.ArgumentParser(prog="todobox-deploy", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="open the deploy wizard on a deploy config")
    run.add_argument("--config", required=True, type=Path, help="the deploy config (TOML)")
    run.add_argument("--operator", default=getpass.getuser(), help="who is deploying (default: $USER)")
    run.set_defaults(handler=_cmd_run)

    demo = sub.add_parser("demo", help="bring up the local sandbox and run the wizard against it")
    demo.add_argument("--dir", type=Path, default=None, help="sandbox directory")
    demo.add_argument("--users", type=int, default=200_000, help="seeded users (default 200000)")
    demo.add_argument("--reset", action="store_true", help="rebuild the sandbox's broken state first")
    demo.add_argument("--operator", default=getpass.getuser())
    demo.set_defaults(handler=_cmd_demo)

    checklist = sub.add_parser("checklist", help="print the checklist tree with ids and kinds")
    checklist.set_defaults(handler=_cmd_checklist)

    add_sandbox_parser(sub)
    add_exec_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:  # a sub-parser that sets its own entry point
        from todobox_deploy.sandbox.cli import run_sandbox_command

        return run_sandbox_command(args)
    result: int = handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
