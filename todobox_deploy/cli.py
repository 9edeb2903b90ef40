"""The ``todobox-deploy`` command line: run the wizard, bring up the sandbox, run one remote command."""

from __future__ import annotations

import argparse
import contextlib
import getpass
import importlib
import os
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from todobox_deploy import __version__
from todobox_deploy.config import ConfigError, DeployConfig, load_config
from todobox_deploy.core import exits
from todobox_deploy.core.startup import begin_startup, end_startup

if TYPE_CHECKING:
    from todobox_deploy.engine.flow import DeployFlow
    from todobox_deploy.engine.launch import Resumable
    from todobox_deploy.engine.lock import HostLocked
    from todobox_deploy.plain import Console


def _prompt_password(prompt: str) -> str:
    return getpass.getpass(prompt)


def _err(message: str) -> None:
    print(f"todobox-deploy: {message}", file=sys.stderr)


def _ask_terminal(question: str) -> bool:
    try:
        return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")
    except EOFError:
        return False


def run_deploy(
    config: DeployConfig,
    *,
    operator: str,
    plain: bool = False,
    yes: bool = False,
    take_over_lock: bool = False,
    console: Console | None = None,
    state_root: Path | None = None,
    rollback: bool = False,
    online: bool = False,
) -> int:
    """Connect (verifying the host key), open the session (journal, lock, resume), run a front end.

    With ``rollback``, the session is a rollback of the newest deploy session for this host and config."""
    from todobox_deploy.engine.credentials import CredentialsError
    from todobox_deploy.engine.launch import open_flow
    from todobox_deploy.engine.lock import HostLocked
    from todobox_deploy.engine.session import DeploySession
    from todobox_deploy.plain import Console, show_resume
    from todobox_deploy.remote.connection import SshConnection
    from todobox_deploy.remote.errors import RemoteError
    from todobox_deploy.remote.prompts import ask_passphrase_on_terminal, ask_trust_on_terminal

    interactive = sys.stdin.isatty() and not yes
    if not plain:
        _load_in_background("todobox_deploy.tui.app")  # while the host answers
    console = console or Console(yes=yes, online=online)
    conn = SshConnection(
        config.target,
        confirm_host_key=ask_trust_on_terminal if interactive else None,
        passphrase=ask_passphrase_on_terminal if interactive else None,
    )
    try:
        conn.connect()
    except RemoteError as exc:
        _err(str(exc))
        return exits.CONNECTION
    session = DeploySession(
        config, connection=conn, prompt_password=_prompt_password if interactive else None
    )
    try:  # the password is found (and registered for redaction) before the first phase's first byte
        session.db_password()
    except (CredentialsError, RemoteError, OSError) as exc:
        _err(str(exc))
        session.close()
        return exits.USAGE

    def take_over(locked: HostLocked) -> bool:
        console.say(f"the host is {locked}")
        if not take_over_lock:
            return False
        if yes:
            return True
        if plain:
            return console.ask("Take the lock over from that deploy?")
        return input("Type 'take over' to take the lock over: ").strip() == "take over"

    def offer_resume(found: Resumable) -> bool:
        show_resume(console, found)
        return console.ask("Resume from there?") if plain or yes else _ask_terminal("Resume from there?")

    try:
        if rollback:
            from todobox_deploy.engine.rollback_launch import NoDeploySession, open_rollback_flow

            try:
                flow = open_rollback_flow(session, operator=operator, root=state_root, take_over=take_over)
            except NoDeploySession as exc:
                _err(str(exc))
                session.close()
                return exits.USAGE
        else:
            flow = open_flow(
                session, operator=operator, root=state_root, take_over=take_over, offer_resume=offer_resume
            )
    except HostLocked as locked:
        _err(f"{locked}; nothing was run (pass --take-over-lock if that deploy is gone)")
        session.close()
        return exits.LOCKED
    except RemoteError as exc:
        _err(str(exc))
        session.close()
        return exits.CONNECTION
    try:
        code = _front_end(flow, plain=plain, console=console)
    except KeyboardInterrupt:
        code = exits.NEEDS_PERSON
        flow.abandon("interrupted (ctrl+c)")
    flow.close(code, _reason(code))
    session.close()
    print(f"journal and transcripts: {flow.session_dir}")
    return code


def _reason(code: int) -> str:
    return {
        exits.OK: "every phase confirmed and the success criteria met",
        exits.PHASE_FAILED: "a phase failed",
        exits.NEEDS_PERSON: "stopped at a gate that needs a person",
    }.get(code, f"exit {code}")


_loading: list[threading.Thread] = []


def _load_in_background(module: str) -> None:
    """Import ``module`` in a daemon thread: the wizard's modules (Textual's among them, about 150 ms of
    CPU) load while the main thread waits on the host (connect, the DB password, the lock: several round
    trips), not after: about 60 ms sooner to the first frame against the sandbox. Everything the main
    thread imports meanwhile is loaded before the thread starts (run_deploy's imports), so the two never
    import the same package at once. A failure is left to the main thread's own import, which raises it."""

    def load() -> None:
        with contextlib.suppress(Exception):
            importlib.import_module(module)

    thread = threading.Thread(target=load, name=f"load {module}", daemon=True)
    _loading.append(thread)
    thread.start()


def _loaded() -> None:
    """Wait for the background imports (before importing the same modules here)."""
    while _loading:
        _loading.pop().join()


def _front_end(flow: DeployFlow, *, plain: bool, console: Console) -> int:
    if plain:
        from todobox_deploy.plain import PlainRun

        end_startup()  # the TUI ends it after its first frame
        return PlainRun(flow, console).run()
    _loaded()
    from todobox_deploy.tui.app import make_app

    code = make_app(flow).run()
    return exits.NEEDS_PERSON if code is None else code


def _cmd_run(args: argparse.Namespace, *, rollback: bool = False) -> int:
    if args.yes and not args.plain:
        _err("--yes needs --plain (the TUI always asks a person)")
        return exits.USAGE
    online = bool(getattr(args, "online", False))
    if online and not args.yes:
        _err("--online needs --plain --yes (otherwise you are asked at the stop gate)")
        return exits.USAGE
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        _err(str(exc))
        return exits.USAGE
    return run_deploy(
        config,
        operator=args.operator,
        plain=args.plain,
        yes=args.yes,
        take_over_lock=args.take_over_lock,
        rollback=rollback,
        online=online,
    )


def _cmd_rollback(args: argparse.Namespace) -> int:
    return _cmd_run(args, rollback=True)


def _cmd_journal_verify(args: argparse.Namespace) -> int:
    from todobox_deploy.journal.verify import verify_journal

    check = verify_journal(args.file)
    if check.ok:
        print(f"{args.file}: intact, {check.entries} entries")
        return 0
    print(f"{args.file}: BROKEN at line {check.bad_line}: {check.reason}")
    return 1


def _cmd_bundle(args: argparse.Namespace) -> int:
    from todobox_deploy.engine.launch import sessions_root
    from todobox_deploy.journal.bundle import write_bundle

    session = args.session
    if session is None:
        root = sessions_root()
        found = sorted(p for p in root.iterdir() if (p / "journal.jsonl").is_file()) if root.is_dir() else []
        if not found:
            _err(f"no session under {root}: name one (a session folder or its journal.jsonl)")
            return exits.USAGE
        session = found[-1]
    if session.name == "journal.jsonl":
        session = session.parent
    try:
        path = write_bundle(session, args.output)
    except (FileNotFoundError, OSError) as exc:
        _err(str(exc))
        return exits.USAGE
    print(path)
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from todobox_deploy.journal.report import report_file

    try:
        text = report_file(args.file)
    except OSError as exc:
        _err(f"{args.file}: {exc.strerror or exc}")
        return exits.USAGE
    if args.output:
        args.output.write_text(text, encoding="utf-8")
        print(f"report written to {args.output}")
    else:
        sys.stdout.write(text)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from todobox_deploy.sandbox.manager import sandbox_up

    end_startup()  # bringing the sandbox up is no startup: it makes and drops many objects
    info = sandbox_up(args.dir, users=args.users, reset=args.reset, state=args.state)
    print(f"sandbox ready in {info.dir} (config {info.config})")
    begin_startup()
    code = run_deploy(load_config(info.config), operator=args.operator)
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


def _add_run(sub: Any, name: str) -> None:
    """``run`` and ``rollback``: the same options (``--online`` is run's only)."""
    handler, what = {
        "run": (_cmd_run, "run the deploy on a deploy config (the wizard, or --plain line output)"),
        "rollback": (
            _cmd_rollback,
            "undo the newest deploy of this host: downgrade or restore (whichever fits the state found), "
            "the previous commit, the app started and verified",
        ),
    }[name]
    run = sub.add_parser(
        name, help=what, epilog=exits.HELP, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    run.add_argument("--config", required=True, type=Path, help="the deploy config (TOML)")
    run.add_argument("--operator", default=getpass.getuser(), help="who is deploying (default: $USER)")
    run.add_argument("--plain", action="store_true", help="line output and [y/N] prompts on stdin, no TUI")
    run.add_argument(
        "--yes",
        action="store_true",
        help="with --plain: answer every gate yes (manual items are confirmed as unattended)",
    )
    run.add_argument(
        "--take-over-lock",
        action="store_true",
        help="take the host's deploy lock over from a deploy that is gone (asks you to type it)",
    )
    if name == "run":
        run.add_argument(
            "--online",
            action="store_true",
            help="with --plain --yes: when the rehearsal found the migration purely additive, migrate "
            "while the old code serves and restart into the new code (default: the checklist's "
            "order, stop - migrate - start)",
        )
    run.set_defaults(handler=handler)


def _add_journal(sub: Any, name: str) -> None:
    journal = sub.add_parser(name, help="check a session journal")
    jsub = journal.add_subparsers(dest="journal_command", required=True)
    verify = jsub.add_parser(
        "verify", help="exit 0 when the hash chain is intact, 1 naming the first bad line"
    )
    verify.add_argument("file", type=Path)
    verify.set_defaults(handler=_cmd_journal_verify)


def _add_report(sub: Any, name: str) -> None:
    report = sub.add_parser(name, help="a session journal as Markdown")
    report.add_argument("file", type=Path)
    report.add_argument("--output", "-o", type=Path, default=None, help="write to a file instead of stdout")
    report.set_defaults(handler=_cmd_report)


def _add_bundle(sub: Any, name: str) -> None:
    bundle = sub.add_parser(
        name, help="a .tar.gz of one session for support: journal, transcripts, sign-off, report, config"
    )
    bundle.add_argument(
        "session", type=Path, nargs="?", default=None, help="session folder (default: newest)"
    )
    bundle.add_argument("--output", "-o", type=Path, default=None, help="where to write the .tar.gz")
    bundle.set_defaults(handler=_cmd_bundle)


def _add_demo(sub: Any, name: str) -> None:
    demo = sub.add_parser(name, help="bring up the local sandbox and run the wizard against it")
    demo.add_argument("--dir", type=Path, default=None, help="sandbox directory")
    demo.add_argument("--users", type=int, default=200_000, help="seeded users (default 200000)")
    demo.add_argument("--reset", action="store_true", help="rebuild the sandbox's broken state first")
    demo.add_argument(
        "--state", default=None, help="the sandbox state to start from (see `sandbox up --help`)"
    )
    demo.add_argument("--operator", default=getpass.getuser())
    demo.set_defaults(handler=_cmd_demo)


def _add_checklist(sub: Any, name: str) -> None:
    checklist = sub.add_parser(name, help="print the checklist tree with ids and kinds")
    checklist.set_defaults(handler=_cmd_checklist)


def _add_sandbox(sub: Any, name: str) -> None:
    from todobox_deploy.sandbox.cli import add_sandbox_parser

    add_sandbox_parser(sub)


def _add_exec(sub: Any, name: str) -> None:
    from todobox_deploy.exec_cli import add_exec_parser

    add_exec_parser(sub)


SUBCOMMANDS: dict[str, Callable[[Any, str], None]] = {
    "run": _add_run,
    "rollback": _add_run,
    "journal": _add_journal,
    "report": _add_report,
    "bundle": _add_bundle,
    "demo": _add_demo,
    "checklist": _add_checklist,
    "sandbox": _add_sandbox,
    "exec": _add_exec,
}
"""Each sub-command and what adds its parser, in the order ``--help`` lists them."""


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line. Given the sub-command about to run (``command``, a known name), only its parser is
    built: its usage, help and errors are the same, and the other sub-commands' parsers and modules are
    not built or imported (the wizard's first frame waits on this, tests/bench_first_frame.py). Without
    it, or for a name that is not a sub-command, the whole parser (for ``--help`` and the error that
    lists the choices)."""
    parser = argparse.ArgumentParser(prog="todobox-deploy", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    names = [command] if command in SUBCOMMANDS else list(SUBCOMMANDS)
    for name in names:
        SUBCOMMANDS[name](sub, name)
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """``argv`` (default: the process's arguments) parsed by the parser its sub-command needs."""
    args = list(sys.argv[1:] if argv is None else argv)
    command = args[0] if args and not args[0].startswith("-") else None
    return build_parser(command).parse_args(args)


OPENS_A_FRONT_END = ("run", "rollback", "demo")
"""Commands whose first frame (or first line) waits on startup: tuned for it until then (core/startup.py)."""


ONLY_PRINT = ("checklist", "report", "journal")
"""Commands that only print: a reader that goes away early (``| head``) ends them quietly, with 0."""


def main(argv: Sequence[str] | None = None) -> int:
    begin_startup()  # ended by the front end once it is up (core/startup.py), or on the way out
    try:
        args = parse_args(argv)
        if args.command not in OPENS_A_FRONT_END:
            end_startup()
        handler = getattr(args, "handler", None)
        if handler is None:  # a sub-parser that sets its own entry point
            from todobox_deploy.sandbox.cli import run_sandbox_command

            return run_sandbox_command(args)
        try:
            result: int = handler(args)
        except BrokenPipeError:
            if args.command not in ONLY_PRINT:
                raise
            # `todobox-deploy checklist | head`: the reader has what it wanted; no traceback at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        return result
    finally:
        end_startup()


if __name__ == "__main__":
    sys.exit(main())
