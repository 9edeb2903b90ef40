"""Drive ``todobox-deploy run --plain`` as a real subprocess: answer its ``[y/N]`` prompts, read its journal.

Everything waits on a condition with a deadline (a prompt on stdout, an event in the journal, a process
gone); nothing sleeps for a fixed time.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

PROMPT = "[y/N] "
JOURNAL_LINE = re.compile(r"(?m)^journal: (\S+)$")  # what run, rollback and demo print first
CLI = [sys.executable, "-m", "todobox_deploy"]

# ``python -c`` launcher: ``todobox-deploy`` with the phases named in argv[1] (comma-separated) made "not
# automated" (their body removed), as if the engine could not run them: the operator must do them by hand.
_BY_HAND_LAUNCHER = """\
import dataclasses, sys
from todobox_deploy.engine.phases import PHASES
for phase in filter(None, sys.argv[1].split(",")):
    PHASES[phase] = dataclasses.replace(PHASES[phase], body=None)
from todobox_deploy.cli import main
sys.exit(main(sys.argv[2:]))
"""


def cli_command(by_hand: Sequence[str] = ()) -> list[str]:
    """The argv prefix that runs ``todobox-deploy``; with ``by_hand``, those phases are not automatable."""
    if not by_hand:
        return list(CLI)
    return [sys.executable, "-c", _BY_HAND_LAUNCHER, ",".join(by_hand)]


def cli_env(state_home: Path) -> dict[str, str]:
    """The environment of a CLI subprocess whose session folders go under ``state_home``."""
    return {**os.environ, "XDG_STATE_HOME": str(state_home), "PYTHONUNBUFFERED": "1"}


def private_config(config: Path, directory: Path) -> Path:
    """A copy of a deploy config whose host lock and detached runs live in ``directory/runs`` on the host.

    Tests share one sandbox; a test that kills a run leaves its lock behind: each test gets its own.
    """
    text = config.read_text()
    runs = f"run_root = {json.dumps(str(directory / 'runs'))}"
    text, n = re.subn(r"(?m)^run_root = .*$", runs, text)
    if n == 0:
        assert "\n[target]\n" in text, "unexpected deploy config layout"
        text = text.replace("\n[target]\n", f"\n[target]\n{runs}\n", 1)
    copy = directory / "deploy.toml"
    copy.write_text(text)
    return copy


def sessions_dir(state_home: Path) -> Path:
    return state_home / "todobox-deploy" / "sessions"


def run_cli(
    args: Sequence[str], state_home: Path, timeout: float = 120, by_hand: Sequence[str] = ()
) -> subprocess.CompletedProcess[str]:
    """A CLI command run to its end with stdin closed."""
    return subprocess.run(
        [*cli_command(by_hand), *args],
        env=cli_env(state_home),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def wait_until(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.02) -> Any:
    """Poll ``condition`` until it returns something truthy (returned); fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def read_events(path: Path) -> list[dict[str, Any]]:
    """A journal's complete entries (a line still being written is left out)."""
    if not path.exists():
        return []
    lines = path.read_bytes().split(b"\n")[:-1]
    return [json.loads(line) for line in lines if line.strip()]


def events(path: Path, name: str, **match: Any) -> list[dict[str, Any]]:
    """The journal's entries of one event whose fields equal ``match``."""
    return [
        e
        for e in read_events(path)
        if e.get("event") == name and all(e.get(k) == v for k, v in match.items())
    ]


def wait_for_event(path: Path, name: str, timeout: float = 60, **match: Any) -> dict[str, Any]:
    found = wait_until(lambda: events(path, name, **match), timeout, f"{name} {match or ''} in {path}")
    return dict(found[0])


class Poller:
    """A daemon thread that calls :meth:`poll` every ``interval`` seconds (0: back to back) while the
    ``with`` block runs; leaving it stops the thread and waits for it (``join_timeout``, None: as long as it
    takes)."""

    join_timeout: float | None = 10.0

    def __init__(self, interval: float, name: str) -> None:
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name=name)

    def poll(self) -> None:
        raise NotImplementedError

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.poll()
            self._stop.wait(self.interval)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(self.join_timeout)


def proc_files(parts: Sequence[str] = ("cmdline", "environ")) -> Iterator[tuple[str, str, bytes]]:
    """``(pid, part, content)`` of every process's ``/proc/<pid>/<part>`` readable now (a process that
    ended meanwhile, or a file that cannot be read, is left out)."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        for part in parts:
            try:
                yield pid, part, Path("/proc", pid, part).read_bytes()
            except OSError:
                continue


class SecretWatch(Poller):
    """While active, polls every process of this user for ``secret`` in its argv and its environment
    (``/proc/<pid>/cmdline`` and ``environ``); ``hits`` names each process that showed it.

    A sampling watch: it sees what lives at least one ``interval``. ``scans`` counts the complete passes
    (a test asserts there were some). A process started while watching whose files cannot be read is a
    hit too (fail closed); one that was already running then (e.g. pid 1 in a container) is only listed
    in ``unreadable``.
    """

    join_timeout = 30.0

    def __init__(self, secret: str, interval: float = 0.02) -> None:
        assert secret
        super().__init__(interval, "secret-watch")
        self.secret = secret.encode()
        self.hits: dict[int, str] = {}
        self.scans = 0
        self.processes: set[int] = set()  # every pid seen
        self.unreadable: set[int] = set()
        self._before = {int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()}

    def poll(self) -> None:
        uid = os.getuid()
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit():
                self._check(proc, uid)
        self.scans += 1

    def _check(self, proc: Path, uid: int) -> None:
        try:
            if proc.stat().st_uid != uid:
                return
            texts = [(name, (proc / name).read_bytes()) for name in ("cmdline", "environ")]
        except (FileNotFoundError, ProcessLookupError):  # it ended meanwhile
            return
        except PermissionError:
            # not dumpable (sshd's privilege-separated session processes): even root may not read their
            # environ; the password never goes there (it travels on a channel's stdin to the command)
            self.unreadable.add(int(proc.name))
            return
        except OSError as exc:
            pid = int(proc.name)
            self.unreadable.add(pid)
            if pid not in self._before:
                self.hits[pid] = f"cannot read: {exc}"
            return
        self.processes.add(int(proc.name))
        for name, text in texts:
            if self.secret in text:
                argv = texts[0][1].replace(b"\0", b" ").decode("utf-8", "replace")
                self.hits[int(proc.name)] = f"{name} of {argv[:300]}".replace(
                    self.secret.decode(), "<SECRET>"
                )


def pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    # a zombie still answers kill(0): look at its state
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


class PlainProcess:
    """``todobox-deploy run --plain`` with its stdin, stdout and stderr on pipes."""

    def __init__(
        self,
        config: Path,
        state_home: Path,
        *extra: str,
        operator: str = "alice",
        by_hand: Sequence[str] = (),
    ) -> None:
        self.operator = operator
        args = ["run", "--config", str(config), "--plain", "--operator", operator, *extra]
        self.proc = subprocess.Popen(
            [*cli_command(by_hand), *args],
            env=cli_env(state_home),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self._out = bytearray()
        self._err = bytearray()
        self._changed = threading.Condition()
        self._out_closed = False  # stdout reached its end (the process exited or closed it)
        self.pos = 0  # how far the output has been consumed by wait_for / next_prompt
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._readers = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, self._out, True), daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stderr, self._err, False), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _pump(self, pipe: Any, buf: bytearray, is_stdout: bool) -> None:
        fd = pipe.fileno()
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b""
            with self._changed:
                if chunk:
                    buf.extend(chunk)
                elif is_stdout:
                    self._out_closed = True
                self._changed.notify_all()
            if not chunk:
                return

    # -- output ---------------------------------------------------------------------------------

    @property
    def output(self) -> str:
        with self._changed:
            return self._out.decode("utf-8", "replace")

    @property
    def stderr(self) -> str:
        with self._changed:
            return self._err.decode("utf-8", "replace")

    @property
    def journal(self) -> Path:
        """The session journal the run names in its first lines (``journal: <path>``)."""
        with self._changed:
            self._changed.wait_for(
                lambda: JOURNAL_LINE.search(self._out.decode("utf-8", "replace")) or self._out_closed,
                timeout=60,
            )
            match = JOURNAL_LINE.search(self._out.decode("utf-8", "replace"))
        if match is None:
            raise self._fail("no `journal: <path>` line")
        return Path(match.group(1))

    def _fail(self, what: str) -> AssertionError:
        return AssertionError(
            f"{what}; exit={self.proc.poll()}\n--- stdout ---\n{self.output}\n--- stderr ---\n{self.stderr}"
        )

    @property
    def phase(self) -> str | None:
        """The phase whose ``== title (id) ==`` header the output shows last."""
        headers = re.findall(r"(?m)^== .* \((\w+)\) ==$", self.output)
        return headers[-1] if headers else None

    def wait_for(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        """Wait until ``pattern`` (a regex) shows in the output after what was consumed; consume it."""
        found = self._search(pattern, timeout)
        if found is None:
            raise self._fail(f"{pattern!r} did not show within {timeout:g} s")
        return found

    def _search(self, pattern: str, timeout: float) -> re.Match[str] | None:
        """Like ``wait_for``, but None when stdout ends (or time runs out) without it."""
        regex = re.compile(pattern)
        found: list[re.Match[str]] = []

        def seen() -> bool:
            m = regex.search(self._out.decode("utf-8", "replace"), self.pos)
            if m:
                found.append(m)
            return m is not None or self._out_closed

        with self._changed:
            self._changed.wait_for(seen, timeout=timeout)
        if not found:
            return None
        self.pos = found[0].end()
        return found[0]

    def next_prompt(self, timeout: float = 60) -> str:
        """Wait for the next question (output ending in ``[y/N] ``); return its text before the prompt."""
        question = self.next_prompt_or_end(timeout)
        if question is None:
            raise self._fail("no further question")
        return question

    def next_prompt_or_end(self, timeout: float = 60) -> str | None:
        """The next question, or None when the run's output ended first."""
        m = self._search(r"(?m)^([^\n]*)\[y/N\] \Z", timeout)
        if m is None and not self._out_closed:  # neither a question nor the end: it hangs
            raise self._fail(f"neither a question nor the end of the output within {timeout:g} s")
        return None if m is None else m.group(1).rstrip()

    def answer(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text.encode() + b"\n")
        self.proc.stdin.flush()

    def close_stdin(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()

    # -- the process ----------------------------------------------------------------------------

    def wait(self, timeout: float = 120) -> int:
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise self._fail(f"did not exit within {timeout:g} s") from None
        for reader in self._readers:
            reader.join(10)
        return code

    def kill(self) -> None:
        """``kill -9``: no clean-up, no ``session_ended``, the host lock left behind."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)
        self.close_stdin()
        for reader in self._readers:
            reader.join(10)


def journal_in(output: str, stderr: str = "") -> Path:
    """The session journal a finished run's output names (``journal: <path>``)."""
    match = JOURNAL_LINE.search(output)
    assert match, output + stderr
    return Path(match.group(1))


def app_status(url: str, timeout: float = 5.0) -> int | None:
    """The HTTP status ``url`` answers (errors included), None when nothing answers."""
    from todobox_deploy.sandbox.http import http_status

    try:
        return http_status(url, timeout=timeout)
    except OSError:
        return None


def health_url(config: Path) -> str:
    """The health URL a deploy config names (the sandbox's always names one)."""
    from todobox_deploy.config import load_config

    url = load_config(config).app.health_url
    assert url, f"{config} names no [app] health_url"
    return url


class HealthWatch(Poller):
    """Polls a health URL every 50 ms while active: when, and what it answered (None: nothing)."""

    def __init__(self, url: str) -> None:
        super().__init__(0.05, "health-watch")
        self.url = url
        self.samples: list[tuple[datetime, int | None]] = []

    @property
    def answers(self) -> list[int | None]:
        return [status for _, status in self.samples]

    def poll(self) -> None:
        self.samples.append((datetime.now(UTC), app_status(self.url)))
