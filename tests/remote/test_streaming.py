"""Streaming exec against a real sshd (§9 items 14-17, 31): both streams, UTF-8, exit codes, cancel."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from todobox_deploy.remote.connection import SshConnection
from todobox_deploy.remote.errors import CommandCancelled, CommandKilled, CommandTimedOut, UnsafeArgument
from todobox_deploy.remote.secrets import Secrets

from .conftest import Collector
from .test_units import HOSTILE

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def test_ten_megabytes_on_both_streams_no_deadlock(conn: SshConnection) -> None:
    sink = Collector()
    script = (
        'python3 -c "import sys\n'
        "for i in range(200000):\n"
        "    sys.stdout.write('o%06d ' % i + 'x' * 50 + '\\\\n')\n"
        "    sys.stderr.write('e%06d ' % i + 'y' * 50 + '\\\\n')\""
    )
    t0 = time.monotonic()
    assert conn.run(script, sink) == 0
    out, err = sink.lines("stdout"), sink.lines("stderr")
    assert len(out) == len(err) == 200000
    assert out[0].startswith("o000000 ") and out[-1].startswith("o199999 ")
    assert err[123456] == "e123456 " + "y" * 50
    assert sum(len(x) + 1 for x in out) > 11_000_000
    assert max(len(lines) for _, _, lines in sink.batches) <= 1000
    assert time.monotonic() - t0 < 30


def test_split_utf8_over_the_wire(conn: SshConnection) -> None:
    sink = Collector()
    script = (
        'python3 -c "import os, time\n'
        "data = ('äöü €uro 🚀 日本語\\\\n' * 50).encode()\n"
        "for i in range(0, len(data), 3):\n"
        "    os.write(1, data[i:i+3]); os.write(2, data[i:i+3])\n"
        '    time.sleep(0.0005) if i % 97 == 0 else None"'
    )
    assert conn.run(script, sink) == 0
    assert sink.lines("stdout") == ["äöü €uro 🚀 日本語"] * 50
    assert sink.lines("stderr") == ["äöü €uro 🚀 日本語"] * 50


@pytest.mark.parametrize("code", [0, 3, 255])
def test_exit_codes_propagate(conn: SshConnection, code: int) -> None:
    assert conn.run(["sh", "-c", f"exit {code}"], Collector()) == code


def test_killed_by_signal_is_never_success(conn: SshConnection) -> None:
    with pytest.raises(CommandKilled, match="signal"):
        conn.run("kill -KILL $$", Collector())
    with pytest.raises(CommandKilled):
        conn.run(["sh", "-c", "kill -TERM $$; sleep 5"], Collector())
    # a child killed by a signal inside a shell still yields 128+N
    assert conn.run(["bash", "-c", "sleep 10 & kill -TERM $!; wait $!"], Collector()) == 143


def test_no_pty_and_unbuffered_python_streams_live(conn: SshConnection) -> None:
    res = conn.capture(
        "test -t 0 || echo no-stdin-tty; test -t 1 || echo no-stdout-tty; echo $PYTHONUNBUFFERED"
    )
    assert res.stdout.split() == ["no-stdin-tty", "no-stdout-tty", "1"]
    sink = Collector()
    t0 = time.monotonic()
    conn.run(["python3", "-c", "import time\nfor i in range(4):\n    print(i); time.sleep(0.4)"], sink)
    times = [t - t0 for t, s, lines in sink.batches if s == "stdout"]
    assert len(times) >= 3 and times[-1] - times[0] > 0.8  # arrived spread out, not bunched at exit


def test_cancel_kills_the_remote_process_group(conn: SshConnection, tmp_path: Path) -> None:
    marker = tmp_path / "survived"
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    t0 = time.monotonic()
    with pytest.raises(CommandCancelled):
        conn.run(f"(sleep 1; touch {marker}) & sleep 30; echo never", Collector(), cancel=cancel)
    assert time.monotonic() - t0 < 5
    time.sleep(1.5)
    assert not marker.exists()
    with pytest.raises(CommandTimedOut):
        conn.run(["sleep", "30"], Collector(), timeout=0.5)
    # the connection is still usable afterwards
    assert conn.capture(["echo", "ok"]).stdout == "ok\n"


def test_hostile_values_pass_literally(conn: SshConnection, tmp_path: Path) -> None:
    res = conn.capture(["bash", "-c", 'cd -- "$0" && printf "%s\\0" "$@"', str(tmp_path), *HOSTILE])
    assert res.exit_status == 0
    assert res.stdout.split("\0")[:-1] == HOSTILE
    assert not (tmp_path / "pwned").exists()
    (tmp_path / "-rf").write_text("x")
    assert conn.capture(["ls", "--", str(tmp_path / "-rf")]).exit_status == 0
    with pytest.raises(UnsafeArgument, match="NUL"):
        conn.capture(["echo", "a\x00b"])


def test_secret_in_command_text_is_refused_and_output_redacted(conn: SshConnection) -> None:
    secrets = Secrets(["hunter2-secret"])
    with pytest.raises(UnsafeArgument) as exc:
        conn.run(["echo", "hunter2-secret"], Collector(), secrets=secrets)
    assert "hunter2" not in str(exc.value)
    sink = Collector()
    # the secret arrives on stdin and is echoed back, one byte at a time
    script = 'python3 -c "import os,sys\nd=sys.stdin.buffer.read()\nfor b in d: os.write(1, bytes([b]))"'
    conn.run(script, sink, stdin=b"pw=hunter2-secret end\n", secrets=secrets)
    assert sink.lines() == ["pw=[REDACTED] end"]


def test_cancel_before_the_command_started(conn: SshConnection, tmp_path: Path) -> None:
    marker = tmp_path / "ran-on"
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(CommandCancelled):
        conn.run(f"sleep 1; touch {marker}", Collector(), cancel=cancel)
    time.sleep(1.5)
    assert not marker.exists()


def test_cancel_is_seen_while_output_floods_a_slow_sink(conn: SshConnection) -> None:
    cancel = threading.Event()
    batches = 0

    def slow_sink(stream: str, lines: list[str]) -> None:  # slower than `yes` writes: data always waits
        nonlocal batches
        batches += 1
        time.sleep(0.002)

    threading.Timer(0.5, cancel.set).start()
    t0 = time.monotonic()
    with pytest.raises(CommandCancelled):
        conn.run(["yes", "a line of output"], slow_sink, cancel=cancel)
    assert time.monotonic() - t0 < 8 and batches > 10
