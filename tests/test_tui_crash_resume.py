"""kill -9 of the real TUI, then `run --plain` again: the crash is noticed, the host is asked, the resume is
offered where the host proves it, and a phase the host already shows done is not run again.

The wizard runs as ``python -m todobox_deploy run`` on a pseudo-terminal; keys are written to the pty only
once the journal shows the state they are meant for. Every wait has a deadline; nothing sleeps for a
fixed time.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from run_helpers import private_config

from todobox_deploy.journal.verify import verify_journal
from todobox_deploy.sandbox.http import http_status
from todobox_deploy.sandbox.manager import SandboxInfo, sandbox_restore

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

BEFORE_STOP = ["backup", "preflight", "rehearsal", "notify"]  # the phases before the stop, in order

CLI = [sys.executable, "-m", "todobox_deploy"]
OPERATOR = "alice"
ROWS, COLS = 40, 120
ANSI = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[@-Z\\-_])")


# -- waiting and journals -----------------------------------------------------------------------------


def wait_until(condition: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    """Poll ``condition`` until it returns something truthy (returned); fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


def read_events(path: Path) -> list[dict[str, Any]]:
    """A journal's complete lines (one still being written is left out)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_bytes().split(b"\n")[:-1] if line.strip()]


def events(path: Path, name: str, **match: Any) -> list[dict[str, Any]]:
    return [
        e
        for e in read_events(path)
        if e.get("event") == name and all(e.get(k) == v for k, v in match.items())
    ]


def sessions(state_home: Path) -> list[Path]:
    """The session journals under ``state_home``, oldest first (folder names start with the time)."""
    return sorted((state_home / "todobox-deploy" / "sessions").glob("*/journal.jsonl"))


# -- the processes --------------------------------------------------------------------------------------


def isolated_config(sandbox: SandboxInfo, directory: Path) -> Path:
    """The sandbox's deploy config with the host lock and detached runs under ``directory``."""
    return private_config(sandbox.config, directory)


def cli_env(state_home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEXTUAL")}
    env.update(
        XDG_STATE_HOME=str(state_home),
        XDG_DATA_HOME=str(state_home / "data"),  # host-key pins, should any be written
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


class TuiOnPty:
    """``todobox-deploy run`` (the Textual wizard) with a pseudo-terminal as its stdin, stdout and stderr."""

    def __init__(self, config: Path, state_home: Path) -> None:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
        env = cli_env(state_home, TERM="xterm-256color", COLUMNS=str(COLS), LINES=str(ROWS))
        try:
            self.proc = subprocess.Popen(
                [*CLI, "run", "--config", str(config), "--operator", OPERATOR],
                stdin=slave,
                stdout=slave,
                stderr=slave,
                env=env,
                start_new_session=True,
            )
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        self.master = master
        self._buf = bytearray()
        self._lock = threading.Lock()
        self._drain = threading.Thread(target=self._pump, daemon=True, name="pty-drain")
        self._drain.start()

    def _pump(self) -> None:
        """Read the master side to its end, so the app never blocks on a full pty buffer."""
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO: every slave side is closed (the app is gone)
                return
            if not chunk:
                return
            with self._lock:
                self._buf.extend(chunk)

    @property
    def screen_text(self) -> str:
        """Everything written to the terminal so far, escape sequences removed."""
        return self.text_since(0)

    def mark(self) -> int:
        """A position in the terminal output, for :meth:`text_since`."""
        with self._lock:
            return len(self._buf)

    def text_since(self, mark: int) -> str:
        """What was written to the terminal after ``mark``, escape sequences removed."""
        with self._lock:
            raw = self._buf[mark:].decode("utf-8", "replace")
        return ANSI.sub("", raw)

    def press(self, key: bytes) -> None:
        os.write(self.master, key)

    def press_until(
        self, key: bytes, condition: Callable[[], Any], what: str, timeout: float = 60, every: float = 8.0
    ) -> Any:
        """Press ``key`` and wait for ``condition``; press again every ``every`` seconds until it holds.

        A key that landed is journaled at once, so a repeat is only sent after a while without a trace;
        the keys used here do nothing on the screen the landed one leads to.
        """
        deadline = time.monotonic() + timeout
        while True:
            self.press(key)
            left = deadline - time.monotonic()
            try:
                return wait_until(condition, what, timeout=max(0.0, min(every, left)))
            except AssertionError:
                if time.monotonic() + 0.001 >= deadline:
                    raise AssertionError(f"{what}; the terminal shows:\n{self.screen_text[-3000:]}") from None

    def kill9(self) -> None:
        """``kill -9``: no clean-up, no ``session_ended``, the host lock left behind. Reaped, so the
        lock's holder is provably gone."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)
        self._drain.join(10)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.kill9()
        self._drain.join(10)
        os.close(self.master)


@pytest.fixture
def tui_factory(tmp_path: Path) -> Iterator[Callable[[Path], TuiOnPty]]:
    started: list[TuiOnPty] = []

    def start(config: Path) -> TuiOnPty:
        tui = TuiOnPty(config, tmp_path)
        started.append(tui)
        return tui

    yield start
    for tui in started:
        tui.close()


@pytest.fixture
def sandbox_restored_after(sandbox_reset: SandboxInfo) -> Iterator[SandboxInfo]:
    """``sandbox_reset``, and put back in the bug state (app running) afterwards for the tests that
    follow on the session sandbox."""
    yield sandbox_reset
    sandbox_restore(sandbox_reset.directory)


def tui_session(tui: TuiOnPty, state_home: Path) -> Path:
    """The journal of the wizard's session, once it started and the wizard shows its first screen."""
    journal = wait_until(lambda: sessions(state_home), "the TUI's session folder")[0]
    wait_until(lambda: events(journal, "lock_taken"), f"lock_taken in {journal}")
    try:
        wait_until(lambda: "next: backup" in tui.screen_text, "the wizard's first screen", timeout=60)
    except AssertionError:
        raise AssertionError(f"no wizard on the terminal:\n{tui.screen_text[-3000:]}") from None
    return Path(journal)


def plain_rerun(config: Path, state_home: Path, answers: str) -> subprocess.CompletedProcess[str]:
    """``run --plain`` to its end, its stdin the given answer lines then end of input."""
    return subprocess.run(
        [*CLI, "run", "--config", str(config), "--plain", "--operator", OPERATOR],
        env=cli_env(state_home),
        input=answers,
        capture_output=True,
        text=True,
        timeout=180,
    )


def journal_of(out: subprocess.CompletedProcess[str]) -> Path:
    match = re.search(r"(?m)^journal: (\S+)$", out.stdout)
    assert match, f"no `journal:` line\n--- stdout ---\n{out.stdout}\n--- stderr ---\n{out.stderr}"
    return Path(match.group(1))


def app_answers(info: SandboxInfo) -> bool:
    try:
        http_status(info.app_url, timeout=10)
    except OSError:
        return False
    return True


def run_and_confirm(tui: TuiOnPty, journal: Path, phase: str) -> None:
    """``g`` runs the next phase (``phase``); once it finished, ``y`` in its confirmation modal."""
    tui.press_until(b"g", lambda: events(journal, "phase_started", phase=phase), f"{phase} started")
    finished = wait_until(
        lambda: events(journal, "phase_finished", phase=phase), f"{phase} finished", timeout=120
    )[0]
    assert finished["status"] in ("ok", "warning", "skipped"), finished
    # y does nothing on the wizard itself: pressed again until the modal it is meant for took it
    tui.press_until(
        b"y", lambda: events(journal, "phase_confirmed", phase=phase), f"{phase} confirmed", every=1
    )


def start_stop_app(tui: TuiOnPty, journal: Path) -> None:
    """``g`` at the stop gate: the rehearsal saw an additive migration, so the wizard first offers to
    migrate online (a modal); ``n`` keeps the checklist's order; the stop, being destructive, starts only
    once its name is typed (ctrl+u first clears a stray ``n`` from the field)."""
    mark = tui.mark()

    def started() -> list[dict[str, Any]]:
        return events(journal, "phase_started", phase="stop_app")

    tui.press_until(b"g", lambda: started() or "Migrate online?" in tui.text_since(mark), "the stop gate")
    assert not started(), "stop_app started without the online migration offer"
    named = "the stop's second confirmation"
    tui.press_until(b"n", lambda: "Type the phase name" in tui.text_since(mark), named)
    tui.press_until(b"\x15stop_app\r", started, "stop_app started after its name was typed")
    assert events(journal, "online_migration_declined") and not events(journal, "online_migration_chosen")


# -- the tests -------------------------------------------------------------------------------------------


def test_kill_after_stop_then_plain_resume_confirms_the_host_instead_of_stopping_again(
    sandbox_restored_after: SandboxInfo, tmp_path: Path, tui_factory: Callable[[Path], TuiOnPty]
) -> None:
    info = sandbox_restored_after
    config = isolated_config(info, tmp_path)
    assert app_answers(info)

    tui = tui_factory(config)
    journal = tui_session(tui, tmp_path)
    for phase in BEFORE_STOP:
        run_and_confirm(tui, journal, phase)
    start_stop_app(tui, journal)
    finished = wait_until(
        lambda: events(journal, "phase_finished", phase="stop_app"), "stop_app finished", timeout=120
    )[0]
    assert finished["status"] == "ok", finished
    tui.kill9()  # at the confirmation of stop_app: the app is down, nothing confirmed it

    assert [e["phase"] for e in events(journal, "phase_confirmed")] == BEFORE_STOP
    assert not app_answers(info), "the app still answers after stop_app"
    assert not events(journal, "session_ended")
    assert verify_journal(journal).ok  # a killed session's journal is intact up to its last line

    out = plain_rerun(config, tmp_path, "y\ny\n")
    text = out.stdout
    dump = f"--- stdout ---\n{text}\n--- stderr ---\n{out.stderr}"
    assert out.returncode == 3, dump  # stops at the gate: stop_app is not confirmed (end of input)
    assert "The last session for this host did not end" in text, dump
    assert "did not end" in text and "DOWN" in text, dump
    assert "resume at: stop_app (already done on the host" in text, dump
    assert "already done on the host (the app is not answering): not run again" in text, dump
    assert "Migrate online" not in text, dump  # declined in the killed session: not asked again
    assert "stopped at stop_app: not confirmed" in text, dump

    rerun = journal_of(out)
    assert rerun != journal and rerun.parent.parent == journal.parent.parent
    started = events(rerun, "session_started")[0]
    assert Path(started["unfinished_session"]).resolve() == journal.resolve()
    assert events(rerun, "lock_taken")[0]["take_over"] is True  # the killed wizard's lock, holder gone
    offered = events(rerun, "resume_offered")[0]
    assert offered["accepted"] is True and offered["resume_at"] == "stop_app", offered
    assert offered["carried"] == BEFORE_STOP and offered["done_on_host"], offered
    assert Path(events(rerun, "resumed")[0]["resumed_from"]).resolve() == journal.resolve()
    assert [e["phase"] for e in events(rerun, "phase_carried")] == BEFORE_STOP
    assert events(rerun, "phase_finished", phase="stop_app", proven_on_host=True)
    assert not events(rerun, "phase_started"), "a phase was run again"
    assert events(rerun, "session_ended")
    assert not events(journal, "session_ended")  # the killed session stays unfinished
    assert verify_journal(rerun).ok
    assert not app_answers(info)  # nothing started it again


def test_kill_at_the_backup_confirmation_resumes_without_dumping_again(
    sandbox_reset: SandboxInfo, tmp_path: Path, tui_factory: Callable[[Path], TuiOnPty]
) -> None:
    info = sandbox_reset
    config = isolated_config(info, tmp_path)

    tui = tui_factory(config)
    journal = tui_session(tui, tmp_path)
    mark = tui.mark()
    tui.press_until(b"g", lambda: events(journal, "phase_started", phase="backup"), "backup started")
    wait_until(lambda: events(journal, "phase_finished", phase="backup"), "backup finished", timeout=120)
    wait_until(lambda: "Confirm phase" in tui.text_since(mark), "the backup confirmation on the terminal")
    tui.kill9()  # at the confirmation modal: a verified dump on the host, the app untouched

    assert app_answers(info) and http_status(info.app_url, timeout=10) == 500  # up, in the bug state
    assert not events(journal, "session_ended") and not events(journal, "phase_confirmed")
    (finished,) = events(journal, "phase_finished", phase="backup")
    assert finished["status"] == "ok", finished
    dumps = sorted((info.directory / "backups").glob("*.sql.gz"))
    assert dumps

    out = plain_rerun(config, tmp_path, "y\n")
    text = out.stdout
    dump = f"--- stdout ---\n{text}\n--- stderr ---\n{out.stderr}"
    assert out.returncode == 3, dump
    assert "did not end" in text, dump
    assert "resume at: backup (already done on the host" in text, dump
    assert "DOWN" not in text, dump
    assert "stopped at backup: not confirmed" in text, dump

    rerun = journal_of(out)
    assert Path(events(rerun, "resumed")[0]["resumed_from"]).resolve() == journal.resolve()
    offered = events(rerun, "resume_offered")[0]
    assert offered["accepted"] is True and offered["resume_at"] == "backup", offered
    assert offered["carried"] == [] and offered["done_on_host"], offered
    assert events(rerun, "phase_finished", phase="backup", proven_on_host=True)
    assert not events(rerun, "phase_started")  # the backup was not run again; end of input: nothing ran
    assert sorted((info.directory / "backups").glob("*.sql.gz")) == dumps  # no second dump
    assert events(rerun, "session_ended") and not events(journal, "session_ended")
    assert app_answers(info)
