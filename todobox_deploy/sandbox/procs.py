"""Process helpers: liveness by pid, pid files, stopping by pid, log tails."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


class SandboxError(RuntimeError):
    """A sandbox server failed to start or stop; the message says what to do."""


def pid_alive(pid: int | None) -> bool:
    """True when ``pid`` runs (a zombie counts as gone: PID 1 here may not reap)."""
    if not pid or pid <= 0:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    state = stat.rsplit(")", 1)[-1].split()[0]
    return state not in ("Z", "X")


def cmdline(pid: int) -> str:
    """The process's command line joined by spaces, or "" when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def read_pid(path: Path) -> int | None:
    """The pid in a pid file, or None when the file is missing or garbled."""
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def write_pid(path: Path, pid: int) -> None:
    path.write_text(f"{pid}\n")


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (from /proc/*/stat)."""
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 1 and fields[1] == str(pid):
            found.append(int(entry.name))
    return found


def descendants(pid: int) -> list[int]:
    """Every descendant of ``pid``, parents before children."""
    out: list[int] = []
    todo = [pid]
    while todo:
        for child in children(todo.pop()):
            out.append(child)
            todo.append(child)
    return out


def wait_gone(pids: list[int], timeout: float) -> list[int]:
    """Wait until every pid is gone; return those still alive at the deadline."""
    deadline = time.monotonic() + timeout
    alive = [p for p in pids if pid_alive(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [p for p in alive if pid_alive(p)]
    return alive


def terminate(pid: int | None, timeout: float = 15.0) -> list[int]:
    """SIGTERM ``pid`` (SIGKILL after ``timeout``) and wait; return the pids that were signalled."""
    if not pid_alive(pid):
        return []
    assert pid is not None
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if wait_gone([pid], timeout):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        wait_gone([pid], 5.0)
    return [pid]


def short_socket_path(directory: Path, name: str, prefix: str) -> Path:
    """``directory/name`` when short enough for a unix socket (< 100 bytes), else a fixed path under /tmp.

    The /tmp fallback is derived from the directory (no side effects), so restarts find it again.
    """
    candidate = directory / name
    if len(os.fsencode(candidate)) < 100:
        return candidate
    digest = hashlib.sha256(os.fsencode(directory)).hexdigest()[:16]
    return Path("/tmp") / f"{prefix}-{digest}" / name


def remove_socket(path: Path) -> None:
    """Remove a unix socket file, and its /tmp fallback directory when that is now empty."""
    path.unlink(missing_ok=True)
    if path.parent.parent == Path("/tmp") and path.parent.name.startswith("tbx-"):
        with contextlib.suppress(OSError):
            path.parent.rmdir()


def log_tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a log file ("" when missing)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def wait_ready(
    proc: subprocess.Popen[bytes],
    ready: Callable[[], bool],
    *,
    name: str,
    log_path: Path,
    timeout: float,
    stop: Callable[[], object],
) -> None:
    """Poll ``ready()`` until it holds; if ``proc`` exits, or ``timeout`` passes (then ``stop()`` runs),
    raise SandboxError with the log tail."""
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            raise SandboxError(
                f"{name} exited with status {proc.returncode}; log tail:\n{log_tail(log_path)}"
            )
        if time.monotonic() > deadline:
            stop()
            raise SandboxError(f"{name} not ready after {timeout:.0f} s; log tail:\n{log_tail(log_path)}")
        time.sleep(0.02)
