"""Detached runs: a command that survives link drops, followed by byte offset across reconnects.

On the host, per run id, a directory (default ``~/.cache/todobox-deploy/runs/<run_id>/``, mode 0700):
``lock`` (flock held by the wrapper while the job runs), ``started``, ``pid`` (the wrapper, a session
leader: its process group is the job), ``log`` (stdout+stderr), ``rc`` (written atomically at the end).
Stdin, if any (e.g. a MySQL option file), goes through a FIFO that is unlinked once opened: never on disk.
"""

from __future__ import annotations

import re
import shlex
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from todobox_deploy.core.streams import OutputSink, Stream

from .errors import (
    CommandCancelled,
    CommandKilled,
    HostUnreachable,
    LinkLost,
    RemoteError,
    RunLocked,
    RunStateUnknown,
    UnsafeArgument,
)
from .lines import LineBatcher
from .secrets import ByteSink, RedactedBytes, Secrets
from .stream import run_on_channel

if TYPE_CHECKING:
    from .connection import SshConnection

_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")
MAX_STDIN = 60 * 1024  # fits a pipe buffer, so the launch never waits for the job to read
STATE_MARK = "__todobox_run_state__"  # the follow script's last stderr line: how the run ended

_PRELUDE = "root=${1:-$HOME/.cache/todobox-deploy/runs}; d=$root/$2\n"

_WRAPPER = r"""
d=$1; job=$2
echo $$ > "$d/pid"
trap ':' TERM INT HUP
run() { env PYTHONUNBUFFERED=1 bash --norc --noprofile -o pipefail -c "$job" >> "$d/log" 2>&1 9>&-; }
if [ "$3" = 1 ]; then
  # re-feed the FIFO through an anonymous pipe: reopening /dev/stdin on a FIFO without a writer blocks
  exec 8< "$d/stdin"; rm -f -- "$d/stdin"
  cat <&8 8<&- 9>&- | run 8<&-
  rc=${PIPESTATUS[1]}
else
  run < /dev/null
  rc=$?
fi
printf '%s\n' "$rc" > "$d/rc.tmp" && mv -f -- "$d/rc.tmp" "$d/rc"
"""

_LAUNCH = (
    _PRELUDE
    + r"""job=$3; has_stdin=$4
umask 077
mkdir -p -- "$d" || exit 70
exec 9>> "$d/lock"
flock -n 9 || { echo "run $2 is already running on this host (lock $d/lock is held)" >&2; exit 75; }
if [ -e "$d/started" ]; then
  if [ -e "$d/rc" ]; then echo "run $2 already finished with exit code $(cat "$d/rc")" >&2; exit 76; fi
  echo "run $2 was started before and left no exit code" >&2; exit 77
fi
: > "$d/log"; rm -f -- "$d/stdin" "$d/rc" "$d/pid"
if [ "$has_stdin" = 1 ]; then mkfifo -m 600 -- "$d/stdin" || exit 70; fi
date -u +%FT%TZ > "$d/started"
setsid -f bash --norc --noprofile -c WRAPPER todobox-run "$d" "$job" "$has_stdin" \
  < /dev/null > /dev/null 2>&1 || exit 70
if [ "$has_stdin" = 1 ]; then
  timeout 30 cat > "$d/stdin" || { echo "could not hand stdin to run $2" >&2; exit 71; }
fi
exit 0
""".replace("WRAPPER", shlex.quote(_WRAPPER))
)

_FOLLOW = (
    _PRELUDE
    + r"""off=$3
[ -e "$d/started" ] || { echo "there is no run $2 on this host" >&2; exit 78; }
tail -c +$((off + 1)) -F -- "$d/log" 2> /dev/null & t=$!
# the wrapper holds the lock until it has written rc: a blocking flock returns the moment the run ends
flock "$d/lock" true
kill $t 2> /dev/null; wait $t 2> /dev/null
# the run's end state on stderr: the follower catches up on any byte tail had not passed on yet
if [ -e "$d/rc" ]; then echo "STATE_MARK finished $(cat -- "$d/rc") $(stat -c %s -- "$d/log")" >&2; exit 0; fi
echo "STATE_MARK unknown $(stat -c %s -- "$d/log")" >&2
exit 77
""".replace("STATE_MARK", STATE_MARK)
)

_STATE = (
    _PRELUDE
    + r"""
if [ ! -e "$d/started" ]; then echo absent
elif [ -e "$d/rc" ]; then echo "finished $(cat "$d/rc") $(stat -c %s -- "$d/log")"
elif ! flock -n "$d/lock" true; then echo "running $(stat -c %s -- "$d/log")"
else echo unknown
fi
"""
)

_CATCH_UP = _PRELUDE + 'tail -c +$(($3 + 1)) -- "$d/log"\n'
_KILL = _PRELUDE + '[ -e "$d/rc" ] || kill -"$3" -- -"$(cat -- "$d/pid")" 2> /dev/null; exit 0\n'


def _with_args(body: str, *args: str) -> str:
    return "set -- " + shlex.join(args) + "\n" + body


class DetachedRun:
    """One run id on the host. ``launch_and_follow`` starts it; ``follow`` re-attaches."""

    def __init__(self, conn: SshConnection, run_id: str) -> None:
        if not _RUN_ID.match(run_id):
            raise UnsafeArgument(f"run id {run_id!r} must be letters, digits, '.', '_' or '-' (not first)")
        self.conn, self.run_id = conn, run_id
        self.root = conn.run_root or ""
        self.offset = 0

    def _script(self, body: str, *args: str) -> str:
        return _with_args(body, self.root, self.run_id, *args)

    def state(self) -> tuple[str, int | None, int | None]:
        """("absent"|"running"|"finished"|"unknown", exit code, log size)."""
        res = self.conn.capture(self._script(_STATE))
        words = res.stdout.split()
        if res.exit_status != 0 or not words:
            raise RemoteError(f"cannot read the state of run {self.run_id}: {res.stderr.strip()}")
        return _parse_state(words)

    def launch(self, script: str, *, stdin: bytes | None = None) -> None:
        if stdin is not None and len(stdin) > MAX_STDIN:
            raise UnsafeArgument(f"stdin for a detached run is limited to {MAX_STDIN} bytes")
        res = self.conn.capture(self._script(_LAUNCH, script, "1" if stdin is not None else "0"), stdin=stdin)
        msg = res.stderr.strip()
        if res.exit_status == 75:
            raise RunLocked(f"{msg}; a second launch was refused. Re-attach to it instead.")
        if res.exit_status == 76:
            raise RunLocked(f"{msg}; it is not run again. Use a new run id, or re-attach to read its output.")
        if res.exit_status == 77:
            raise RunStateUnknown(
                f"{msg}: it may have crashed or the host rebooted. Check on the host; "
                "it is never re-run automatically."
            )
        if res.exit_status != 0:
            raise RemoteError(f"could not launch run {self.run_id} (exit {res.exit_status}): {msg}")

    def cancel(self, sig: str = "TERM") -> None:
        """Signal the run's process group (the wrapper survives and records the exit code)."""
        self.conn.capture(self._script(_KILL, sig))

    def launch_and_follow(
        self,
        script: str,
        sink: OutputSink,
        *,
        cancel: threading.Event | None = None,
        stdin: bytes | None = None,
        secrets: Secrets | None = None,
    ) -> int:
        self._launch_once(script, stdin)
        return self.follow(sink, offset=0, cancel=cancel, secrets=secrets)

    def launch_and_follow_bytes(
        self,
        script: str,
        out: ByteSink,
        *,
        info: Callable[[str], None],
        secrets: Secrets | None = None,
        stdout_closed: threading.Event | None = None,
    ) -> int:
        """``launch_and_follow`` on the byte path (``exec --detached``): see :meth:`follow_bytes`."""
        self._launch_once(script, None)
        return self.follow_bytes(out, info=info, secrets=secrets, stdout_closed=stdout_closed)

    def _launch_once(self, script: str, stdin: bytes | None) -> None:
        try:
            self.launch(script, stdin=stdin)
        except (LinkLost, CommandKilled):
            # did it start? only the host knows; never launch twice
            self.conn.reconnect()
            if self.state()[0] == "absent":
                raise

    def follow(
        self,
        sink: OutputSink,
        *,
        offset: int = 0,
        cancel: threading.Event | None = None,
        secrets: Secrets | None = None,
    ) -> int:
        """Stream the log from ``offset`` until the run ends; survive drops; return the host's exit code."""
        return self._follow(_Lines(LineBatcher(sink, secrets), offset), offset, cancel, None)

    def follow_bytes(
        self,
        out: ByteSink,
        *,
        info: Callable[[str], None],
        offset: int = 0,
        cancel: threading.Event | None = None,
        secrets: Secrets | None = None,
        stdout_closed: threading.Event | None = None,
    ) -> int:
        """``follow`` on the byte path: the log's bytes go to ``out`` (as "stdout") exactly as written,
        redacted across chunks; what this follower itself reports goes to ``info``. ``stdout_closed`` set
        (nobody reads the output any more): following stops and FollowStopped says where to re-attach;
        the run goes on on the host."""
        return self._follow(_Bytes(RedactedBytes(out, secrets), info, offset), offset, cancel, stdout_closed)

    def _follow(
        self,
        rx: _Receiver,
        offset: int,
        cancel: threading.Event | None,
        stop: threading.Event | None,
    ) -> int:
        self.offset = offset
        cancelled = gave_up = False

        follow_err = bytearray()  # the follow script's own stderr: its end-state line (or why it failed)

        def on_data(stream: Stream, data: bytes) -> None:
            if stream == "stdout":
                self.offset += len(data)
                rx.data(stream, data)
            else:
                follow_err.extend(data)

        def tick() -> None:
            nonlocal cancelled
            rx.tick()
            if cancel is not None and cancel.is_set() and not cancelled:
                rx.info(f"cancelling run {self.run_id}")
                self.cancel()  # if the link is down this raises; it is sent again after the reconnect
                cancelled = True

        try:
            while True:
                try:
                    t = self.conn.transport()
                    follow_err.clear()
                    rc = run_on_channel(
                        t,
                        self._script(_FOLLOW, str(self.offset)),
                        on_data,
                        tick=tick,
                        link_state=self.conn.link_state,
                        cancel=stop,
                        kill_group=self.conn.kill_group,
                    )
                    if rc == 78:
                        raise RemoteError(f"there is no run {self.run_id} on the host")
                    status, code, size = _end_state(bytes(follow_err)) or self.state()
                    if size is not None and size > self.offset:
                        run_on_channel(t, self._script(_CATCH_UP, str(self.offset)), on_data)
                    if rc == 77 or status == "unknown":
                        raise RunStateUnknown(
                            f"run {self.run_id} is not running and left no exit code (killed, or the host "
                            "rebooted); check on the host. It is never re-run automatically."
                        )
                    if status == "finished" and code is not None:
                        if cancelled:
                            raise CommandCancelled(f"run {self.run_id} was cancelled (exit code {code})")
                        return code
                except CommandCancelled:
                    if stop is None or not stop.is_set():
                        raise
                    gave_up = True
                    raise FollowStopped(self.run_id, rx.resume_offset(self.offset)) from None
                except (LinkLost, HostUnreachable, CommandKilled) as exc:
                    rx.info(f"link lost ({exc}); reconnecting to re-attach at byte {self.offset}")
                    try:
                        self.conn.reconnect(notify=rx.info)
                    except (HostUnreachable, LinkLost) as gone:
                        gave_up = True
                        resume = rx.resume_offset(self.offset)
                        raise LinkLost(
                            f"{gone}; run {self.run_id} goes on on the host: re-attach later with "
                            f"attach({self.run_id!r}, offset={resume})"
                        ) from None
                    rx.info(f"re-attached to run {self.run_id} at byte {self.offset}")
        finally:
            rx.close(gave_up)


def _parse_state(words: list[str]) -> tuple[str, int | None, int | None]:
    """``finished RC SIZE`` / ``running SIZE`` / ``unknown [SIZE]`` / ``absent`` as printed by the state
    and follow scripts. A finished run whose exit code cannot be read is "unknown": never a guess."""

    def number(i: int) -> int | None:
        word = words[i] if len(words) > i else ""
        return int(word) if word.lstrip("-").isdigit() else None

    kind = words[0]
    if kind == "finished":
        code = number(1)
        return ("finished", code, number(2)) if code is not None else ("unknown", None, number(2))
    if kind in ("running", "unknown"):
        return kind, None, number(1)
    return kind, None, None


def _end_state(stderr: bytes) -> tuple[str, int | None, int | None] | None:
    """The end state the follow script reported on its stderr (as :meth:`DetachedRun.state`), or None."""
    for line in reversed(stderr.decode("utf-8", "replace").splitlines()):
        words = line.split()
        if words[:1] == [STATE_MARK] and len(words) > 1:
            return _parse_state(words[1:])
    return None


class FollowStopped(Exception):
    """Following a detached run stopped because nobody reads its output; the run goes on on the host."""

    def __init__(self, run_id: str, offset: int) -> None:
        super().__init__(f"stopped following run {run_id}; it goes on on the host (re-attach at {offset})")
        self.run_id, self.offset = run_id, offset


class _Receiver(Protocol):
    """Where a follower's output goes: line batches to a sink, or raw bytes."""

    def data(self, stream: Stream, data: bytes) -> None: ...

    def tick(self) -> None: ...

    def info(self, text: str) -> None: ...

    def resume_offset(self, received: int) -> int:
        """The log offset to re-attach from: everything before it was shown (``received``: read so far)."""
        ...

    def close(self, gave_up: bool) -> None: ...


class _Lines:
    def __init__(self, batcher: LineBatcher, start: int) -> None:
        self.batcher, self.start = batcher, start

    def data(self, stream: Stream, data: bytes) -> None:
        self.batcher.feed("stdout" if stream == "stdout" else "stderr", data)

    def tick(self) -> None:
        self.batcher.maybe_flush()

    def info(self, text: str) -> None:
        self.batcher.message("info", text)

    def resume_offset(self, received: int) -> int:
        return self.start + self.batcher.complete_bytes("stdout")  # a partial last line is not shown

    def close(self, gave_up: bool) -> None:
        if gave_up:
            self.batcher.flush()  # the partial last line is shown after the re-attach
        else:
            self.batcher.close()


class _Bytes:
    def __init__(self, out: RedactedBytes, info: Callable[[str], None], start: int) -> None:
        self.out, self.info, self.start = out, info, start

    def data(self, stream: Stream, data: bytes) -> None:
        self.out(stream, data)

    def tick(self) -> None:
        pass

    def resume_offset(self, received: int) -> int:
        return received - self.out.held("stdout")  # a held tail (maybe a secret's start) was not shown

    def close(self, gave_up: bool) -> None:
        if not gave_up:
            self.out.close()
