"""Local commands (git, checks) through ``sh``, with the same sink shape as remote commands."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import sh

from todobox_deploy.engine.events import OutputSink

from . import quoting
from .errors import CommandCancelled, CommandKilled
from .lines import LineBatcher
from .secrets import Secrets


def run_local(
    argv: Sequence[str],
    sink: OutputSink,
    *,
    cwd: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    cancel: threading.Event | None = None,
    secrets: Secrets | None = None,
) -> int:
    """Run a local command (no shell), streaming line batches to ``sink``; return its exit status.

    Raises CommandKilled if it died from a signal, CommandCancelled if ``cancel`` was set.
    """
    if isinstance(argv, str):
        raise TypeError("run_local() takes an argument list, not shell text")
    quoting.join(argv)  # rejects NUL and empty commands
    batcher = LineBatcher(sink, secrets)

    def out(chunk: Any) -> None:
        batcher.feed("stdout", chunk if isinstance(chunk, bytes) else str(chunk).encode())

    def err(chunk: Any) -> None:
        batcher.feed("stderr", chunk if isinstance(chunk, bytes) else str(chunk).encode())

    cmd = sh.Command(argv[0])
    proc = cmd(
        *argv[1:],
        _out=out,
        _err=err,
        _bg=True,
        _cwd=str(cwd) if cwd else None,
        _env=dict(env) if env is not None else dict(os.environ),
        _ok_code=list(range(256)),
        _decode_errors="replace",
        _out_bufsize=0,
        _err_bufsize=0,
        _new_session=True,
        _bg_exc=False,
        _encoding="utf-8",
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
        batcher.close()
