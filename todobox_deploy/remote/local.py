"""Local commands (git, checks) through ``sh``, with the same sink shape as remote commands."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import sh

from todobox_deploy.core.streams import OutputSink, Stream

from . import quoting
from .errors import CommandCancelled, CommandKilled
from .lines import LineBatcher
from .secrets import Secrets


class _Writer:
    def __init__(self, batcher: LineBatcher, stream: Stream) -> None:
        self.batcher, self.stream = batcher, stream

    def write(self, data: Any) -> None:
        self.batcher.feed(self.stream, data if isinstance(data, bytes) else str(data).encode())

    def flush(self) -> None:
        pass


def run_local(
    argv: Sequence[str],
    sink: OutputSink,
    *,
    cwd: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    cancel: threading.Event | None = None,
    secrets: Secrets | None = None,
    stdin: str | None = None,
) -> int:
    """Run a local command (no shell), streaming line batches to ``sink``; return its exit status.

    Returns 127 if the program does not exist. Raises CommandKilled if it died from a signal,
    CommandCancelled if ``cancel`` was set.
    """
    if isinstance(argv, str):
        raise TypeError("run_local() takes an argument list, not shell text")
    quoting.join(argv)  # rejects NUL and empty commands
    batcher = LineBatcher(sink, secrets)

    try:
        cmd: Any = sh.Command(argv[0])
    except sh.CommandNotFound:
        batcher.message("error", f"{argv[0]}: command not found")
        return 127
    proc = cmd(
        *argv[1:],
        _in=stdin,
        _out=_Writer(batcher, "stdout"),  # a file-like target gets raw bytes (no per-chunk decoding)
        _err=_Writer(batcher, "stderr"),
        _bg=True,
        _cwd=str(cwd) if cwd else None,
        _env=dict(env) if env is not None else dict(os.environ),
        _ok_code=list(range(256)),
        _out_bufsize=0,
        _err_bufsize=0,
        _new_session=True,
        _bg_exc=False,
    )
    cancelled = False
    try:
        while True:
            try:
                proc.wait(timeout=0.05)
                break
            except sh.TimeoutException:
                batcher.maybe_flush()
                if cancel is not None and cancel.is_set() and not cancelled:
                    cancelled = True
                    os.killpg(proc.pid, signal.SIGTERM)
            except sh.SignalException as exc:
                if cancelled:
                    raise CommandCancelled(f"{argv[0]} was cancelled") from None
                raise CommandKilled(f"{argv[0]} was killed by signal {-int(exc.exit_code)}") from None
        if cancelled:
            raise CommandCancelled(f"{argv[0]} was cancelled")
        return int(proc.exit_code)
    finally:
        if proc.process.exit_code is not None:
            proc.process.wait()  # sh joins its output threads only here, not in wait(timeout=...)
        batcher.close()
