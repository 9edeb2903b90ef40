"""Benchmark the time to the first frame: a bare Textual app against todobox-deploy's wizard.

Not collected by pytest (no ``test_`` name). Each run is a fresh ``python`` process on a pseudo-terminal
(the real Linux driver, not headless); the clock runs from just before the process is spawned until the
terminal has received a frame that contains the screen's marker text (ANSI sequences stripped), then the
process is killed. Medians of ``--repeat`` runs, the modes interleaved:

    python tests/bench_first_frame.py [--repeat 15] [--size 120x36] [--root CHECKOUT] [--sandbox CONFIG]

``--root`` measures another checkout's todobox_deploy (e.g. ``git archive`` of an older commit): before/after.

Modes:
  bare        a Textual App whose screen is one Static                                     -> baseline
  wizard      what ``todobox-deploy run --config FILE`` does up to its first frame, minus the network:
              the startup tuning (core/startup.py), the CLI's module and parser, the config loaded, the
              real phase registry in a DeployFlow (journal and transcripts in a temp dir),
              ``make_app(flow).run()``; marker: the wizard's status line, in the frame that shows the
              tree, the header, the details' title, the log pane's frame and the footer (the details'
              Markdown and the log itself mount right after it)
  wizard-ssh  the same plus what ``run_deploy`` imports and builds before it connects (the launch, the
              plain console for the resume prompt, paramiko's SshConnection, the DeploySession; nothing
              connects): the cost of the modules the connection needs, without the network
  run         with ``--sandbox CONFIG``: the real ``todobox-deploy run --config CONFIG`` against a running
              sandbox (``todobox-deploy sandbox up``; its deploy.toml), the host's round trips included
              (connect, the DB password, the lock), each run with its own state folder; marker as above
Target (issue 9): wizard <= bare + 50 ms.

The package is byte-compiled first (``compileall``), as an installed package is: this environment may set
PYTHONDONTWRITEBYTECODE, and compiling todobox_deploy's sources in every run would add about 35 ms that an
installed wizard does not pay (Textual's own bytecode is in site-packages already).
"""

from __future__ import annotations

import argparse
import compileall
import fcntl
import os
import pty
import re
import select
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_MS = 50.0
MODES = ("bare", "wizard", "wizard-ssh")
MARKERS = {
    "bare": "bare first frame",
    "wizard": "next: backup",
    "wizard-ssh": "next: backup",
    "run": "next: backup",
}
ANSI = re.compile(rb"\x1b(?:\[[0-9;?<>=$ ]*[A-Za-z~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[()][A-Z0-9]|[=>NOM78c])")
CONFIG = """\
[target]
host = "bench.example.invalid"
user = "deploy"

[app]
path = "/srv/todobox"

[database]
name = "todobox"
user = "todobox"

[migration]
expected_head = "d1f2e3c4b5a6"

[backup]
directory = "/var/backups/todobox"
"""

BARE = """
from textual.app import App, ComposeResult
from textual.widgets import Static


class Bare(App[None]):
    def compose(self) -> ComposeResult:
        yield Static("bare first frame")


Bare().run()
"""

WIZARD = """
import sys
from pathlib import Path

from todobox_deploy.core.startup import begin_startup

begin_startup()  # as cli.main does first
from todobox_deploy.cli import parse_args

args = parse_args(["run", "--config", sys.argv[1], "--operator", "bench"])
from todobox_deploy.config import load_config

config = load_config(args.config)
if sys.argv[3] == "ssh":  # what run_deploy imports and builds before it connects
    import todobox_deploy.engine.credentials
    import todobox_deploy.engine.launch
    import todobox_deploy.engine.lock
    import todobox_deploy.plain
    import todobox_deploy.remote.errors
    import todobox_deploy.remote.prompts
    from todobox_deploy.engine.session import DeploySession
    from todobox_deploy.remote.connection import SshConnection

    session = DeploySession(config, connection=SshConnection(config.target))
else:
    session = None
from todobox_deploy.checklist import CHECKLIST
from todobox_deploy.engine.flow import DeployFlow
from todobox_deploy.engine.phases import PHASES
from todobox_deploy.journal.journal import Journal
from todobox_deploy.tui.app import make_app

state = Path(sys.argv[2])
flow = DeployFlow(
    CHECKLIST,
    PHASES,
    session=session,
    operator=args.operator,
    host=config.target.host,
    journal=Journal(state / "journal.jsonl", operator=args.operator, host=config.target.host),
    transcript_dir=state / "t",
)
make_app(flow).run()
"""


def _spawn(
    mode: str, config: Path, state: Path, size: tuple[int, int], root: Path = ROOT
) -> tuple[subprocess.Popen[bytes], int]:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", size[1], size[0], 0, 0))
    code = BARE if mode == "bare" else WIZARD
    argv = [sys.executable, "-c", code]
    if mode == "run":  # the real command line (its state folder in the temp dir: no resume offer)
        argv = [sys.executable, "-m", "todobox_deploy", "run", "--config", str(config), "--operator", "bench"]
    elif mode != "bare":
        argv += [str(config), str(state), "ssh" if mode == "wizard-ssh" else "local"]
    env = {**os.environ, "TERM": "xterm-256color", "COLORTERM": "truecolor", "PYTHONPATH": str(root)}
    env["XDG_STATE_HOME"] = str(state)
    proc = subprocess.Popen(
        argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=state, start_new_session=True
    )
    os.close(slave)
    return proc, master


def first_frame_ms(
    mode: str, config: Path, size: tuple[int, int], root: Path = ROOT, timeout: float = 30.0
) -> float:
    """One fresh process: ms from spawn to a frame with the mode's marker on the terminal."""
    marker = MARKERS[mode].encode()
    with tempfile.TemporaryDirectory(prefix="first-frame-") as tmp:
        started = time.perf_counter()
        proc, master = _spawn(mode, config, Path(tmp), size, root)
        seen = b""
        try:
            deadline = started + timeout
            while True:
                left = deadline - time.perf_counter()
                if left <= 0:
                    tail = ANSI.sub(b"", seen)[-400:].decode(errors="replace")
                    raise TimeoutError(f"{mode}: no frame with {marker!r} in {timeout} s; last: {tail!r}")
                ready, _, _ = select.select([master], [], [], left)
                if not ready:
                    continue
                try:
                    chunk = os.read(master, 1 << 16)
                except OSError:  # the child is gone
                    chunk = b""
                if not chunk:
                    tail = ANSI.sub(b"", seen)[-400:].decode(errors="replace")
                    raise RuntimeError(f"{mode}: exited before its first frame: {tail!r}")
                seen += chunk
                if marker in ANSI.sub(b"", seen):
                    return (time.perf_counter() - started) * 1000
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            os.close(master)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15, help="runs per mode (interleaved)")
    parser.add_argument("--size", default="120x36", help="terminal columns x rows")
    parser.add_argument("--warmup", type=int, default=2, help="unrecorded runs per mode first")
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout whose todobox_deploy runs")
    parser.add_argument(
        "--sandbox", type=Path, default=None, help="a running sandbox's deploy.toml: mode run"
    )
    args = parser.parse_args()
    modes = (*MODES, "run") if args.sandbox else MODES
    compileall.compile_dir(args.root.resolve() / "todobox_deploy", quiet=1)
    cols, rows = (int(n) for n in args.size.split("x"))
    times: dict[str, list[float]] = {m: [] for m in modes}
    with tempfile.TemporaryDirectory(prefix="first-frame-config-") as tmp:
        config = Path(tmp) / "deploy.toml"
        config.write_text(CONFIG, encoding="utf-8")
        for i in range(args.warmup + args.repeat):
            for mode in modes:
                target = args.sandbox.resolve() if mode == "run" and args.sandbox else config
                ms = first_frame_ms(mode, target, (cols, rows), args.root.resolve())
                if i >= args.warmup:
                    times[mode].append(ms)
    median = {m: statistics.median(t) for m, t in times.items()}
    print(f"first frame, {cols}x{rows} pty, {args.root.resolve()}")
    print(f"medians of {args.repeat} fresh processes each (min / max):")
    for mode in modes:
        t = times[mode]
        print(f"  {mode:<11} {median[mode]:7.1f} ms   ({min(t):.1f} / {max(t):.1f})")
    bare = median["bare"]
    for mode in modes[1:]:
        diff = median[mode] - bare
        print(f"{mode} vs bare: x{median[mode] / bare:.2f}, {diff:+.1f} ms")
    diff = median["wizard"] - bare
    verdict = "met" if diff <= TARGET_MS else "NOT met"
    goal = f"wizard <= bare + {TARGET_MS:.0f} ms ({bare + TARGET_MS:.1f} ms)"
    print(f"target {goal}: {verdict} ({diff:+.1f} ms)")


if __name__ == "__main__":
    main()
