"""Run one command on an open channel: drain stdout and stderr together, report the exact outcome."""

from __future__ import annotations

import base64
import contextlib
import re
import select
import threading
import time
from collections.abc import Callable
from typing import Any

import paramiko

from todobox_deploy.core.streams import Stream

from .errors import CommandCancelled, CommandKilled, CommandTimedOut, LinkLost
from .wire import install_pipes

# Output is read in 64 KiB pieces: the lines of a 1 MiB piece need fresh memory each time (page faults,
# the line path ran at half the speed). A wake-up that found BULK bytes means output is streaming: the
# reader then naps for NAP before the next select, one wake-up per ~0.5 MiB instead of one per 32 KiB
# packet (the byte path used a quarter less CPU). One wake-up hands out at most PUMP_LIMIT bytes per
# stream, so that a cancel or a timeout is seen while output floods a slow sink.
CHUNK = 64 * 1024
BULK = 128 * 1024
NAP = 0.001
PUMP_LIMIT = 4 * 1024 * 1024
PID_MARK = b"__todobox_pid__="
_PID_LINE = re.compile(rb"__todobox_pid__=(\d+)\n")

DataCallback = Callable[[Stream, bytes], None]
KillGroup = Callable[[int, str], None]


def wrap_command(script: str) -> str:
    """The exec string sent to sshd, which runs it with the login shell (``$SHELL -c``).

    The outer text is one single-quoted word without backslashes or quotes inside, so it means the
    same in sh, bash, csh or fish; the script itself travels base64-encoded. Every step ``exec``s, so
    the printed pid is the login shell's: the session leader (sshd calls setsid), whose process group
    a cancel kills. ``PYTHONUNBUFFERED=1`` goes through ``env``, not channel env (sshd drops names not
    in AcceptEnv without an error). ``--norc``: bash started by sshd would source ~/.bashrc again.
    """
    encoded = base64.b64encode(script.encode("utf-8")).decode("ascii")
    inner = (
        f"echo {PID_MARK.decode()}$$; exec env PYTHONUNBUFFERED=1 bash --norc --noprofile -o pipefail "
        f'-c "$(printf %s {encoded} | base64 -d)"'
    )
    return f"exec bash --norc --noprofile -c '{inner}'"


class _PidFilter:
    """Strips the pid line that ``wrap_command`` prints first on stdout."""

    def __init__(self) -> None:
        self.pid: int | None = None
        self._buf: bytes | None = b""

    def feed(self, data: bytes) -> bytes:
        if self._buf is None:
            return data
        self._buf += data
        m = _PID_LINE.match(self._buf)
        if m:
            self.pid = int(m.group(1))
            rest, self._buf = self._buf[m.end() :], None
            return rest
        if len(self._buf) > 64 or not PID_MARK.startswith(self._buf[: len(PID_MARK)]):
            rest, self._buf = self._buf, None  # something else printed first: pass it through
            return rest
        return b""

    def flush(self) -> bytes:
        rest, self._buf = (self._buf or b""), None
        if b"\n" not in rest and (PID_MARK + b"0123456789").startswith(rest[: len(PID_MARK)]):
            return b""  # a pid line cut short by a dropped link: not command output
        return rest


def _end_of_write(chan: paramiko.Channel) -> None:
    """Tell sshd that no more stdout is read (OpenSSH's ``eow@openssh.com``, what ``ssh`` sends when its
    own stdout is closed): sshd closes the command's stdout pipe, so its next write there gets SIGPIPE."""
    m = paramiko.Message()
    m.add_byte(paramiko.common.cMSG_CHANNEL_REQUEST)
    m.add_int(chan.remote_chanid)
    m.add_string("eow@openssh.com")
    m.add_boolean(False)
    transport: Any = chan.transport
    with contextlib.suppress(OSError, EOFError, paramiko.SSHException):  # a dropped link is reported later
        transport._send_user_message(m)


def _send_stdin(chan: paramiko.Channel, data: bytes | None) -> None:
    try:
        if data:
            chan.sendall(data)
        chan.shutdown_write()
    except (OSError, EOFError, paramiko.SSHException):
        pass  # the command ended or the link dropped: the main loop reports it


def run_on_channel(
    transport: paramiko.Transport,
    script: str,
    on_data: DataCallback,
    *,
    cancel: threading.Event | None = None,
    stdin: bytes | None = None,
    timeout: float | None = None,
    kill_group: KillGroup | None = None,
    link_state: Callable[[], str] | None = None,
    tick: Callable[[], None] | None = None,
    open_timeout: float = 15.0,
    stdout_closed: threading.Event | None = None,
) -> int:
    """Exec ``script`` under bash on a new session channel; return its exit status.

    ``stdout_closed`` set (the reader of the output went away): sshd is told, as ``ssh`` does, and the
    command gets SIGPIPE at its next write to stdout; the output that still arrives is passed on anyway.
    Raises LinkLost (link dropped), CommandKilled (no exit status: killed by a signal),
    CommandCancelled / CommandTimedOut (after the remote process group was killed).
    """
    try:
        chan = transport.open_session(timeout=open_timeout)
        install_pipes(chan)
        chan.exec_command(wrap_command(script))
    except (paramiko.SSHException, OSError, EOFError) as exc:
        raise LinkLost(f"could not start the command: {exc.__class__.__name__}: {exc}") from None
    pid_filter = _PidFilter()
    writer = threading.Thread(target=_send_stdin, args=(chan, stdin), daemon=True, name="ssh-stdin")
    writer.start()
    deadline = None if timeout is None else time.monotonic() + timeout
    stop_reason: str | None = None
    told_eow = False

    def pump() -> int:
        """Hand out what has arrived (up to PUMP_LIMIT per stream); return how many bytes that was."""
        got = err = 0
        while got < PUMP_LIMIT and chan.recv_ready():
            data = chan.recv(CHUNK)
            got += len(data)
            data = pid_filter.feed(data)
            if data:
                on_data("stdout", data)
        while err < PUMP_LIMIT and chan.recv_stderr_ready():
            data = chan.recv_stderr(CHUNK)
            err += len(data)
            on_data("stderr", data)
        return got + err

    try:
        while True:
            select.select([chan], [], [], 0.05)
            got = pump()
            if tick:
                tick()
            if stdout_closed is not None and not told_eow and stdout_closed.is_set():
                told_eow = True
                _end_of_write(chan)
            if chan.eof_received or chan.closed:
                break
            if not transport.is_active():
                break
            if stop_reason is None:
                if cancel is not None and cancel.is_set():
                    stop_reason = "cancelled"
                elif deadline is not None and time.monotonic() > deadline:
                    stop_reason = "timed out"
                if stop_reason is not None:
                    _stop(chan, pid_filter, kill_group, pump)
                    break
            if got >= BULK and not (chan.recv_ready() or chan.recv_stderr_ready()):
                time.sleep(NAP)  # streaming: let the transport thread queue more packets first
        # drain whatever is left: recv returns b"" at EOF; the timeout guards a half-dead channel
        chan.settimeout(0.5)
        streams: tuple[tuple[Stream, Callable[[int], bytes]], ...] = (
            ("stdout", chan.recv),
            ("stderr", chan.recv_stderr),
        )
        for stream, read in streams:
            while True:
                try:
                    data = read(CHUNK)
                except (TimeoutError, OSError):
                    break
                if not data:
                    break
                if stream == "stdout":
                    data = pid_filter.feed(data)
                on_data(stream, data)
        rest = pid_filter.flush()
        if rest:
            on_data("stdout", rest)
        if stop_reason == "cancelled":
            raise CommandCancelled("the command was cancelled; its remote process group was terminated")
        if stop_reason == "timed out":
            raise CommandTimedOut(f"the command ran longer than {timeout:g} s and was terminated")
        return _exit_status(chan, transport, link_state)
    finally:
        chan.close()


def _stop(
    chan: paramiko.Channel,
    pid_filter: _PidFilter,
    kill_group: KillGroup | None,
    pump: Callable[[], int],
) -> None:
    """TERM the remote process group, wait up to 5 s for it to end, then KILL; close the channel."""

    def wait(seconds: float, done: Callable[[], bool]) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end and not done() and not (chan.eof_received or chan.closed):
            select.select([chan], [], [], 0.05)
            pump()

    if kill_group is not None:
        wait(2, lambda: pid_filter.pid is not None)  # cancelled right after the start: the pid is on its way
        if pid_filter.pid is not None:
            kill_group(pid_filter.pid, "TERM")
            wait(5, lambda: False)
            if not (chan.eof_received or chan.closed):
                kill_group(pid_filter.pid, "KILL")
    chan.close()


def _exit_status(
    chan: paramiko.Channel, transport: paramiko.Transport, link_state: Callable[[], str] | None
) -> int:
    end = time.monotonic() + 5
    while not chan.status_event.wait(0.1):
        if time.monotonic() > end or not transport.is_active():
            break
    if chan.exit_status_ready() and chan.exit_status >= 0:
        return int(chan.exit_status)
    # channels are closed before the transport marks itself inactive: give it a moment
    end = time.monotonic() + 0.5
    while transport.is_active() and time.monotonic() < end:
        time.sleep(0.05)
    if not transport.is_active():
        reason = link_state() if link_state else "the SSH connection dropped"
        raise LinkLost(
            f"{reason}; the command's outcome is unknown (it may have been killed or still be running)"
        )
    raise CommandKilled("the command ended without an exit status (killed by a signal); treat it as failed")
