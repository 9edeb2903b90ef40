"""Detached runs and link faults against a real sshd (§9 items 20-25, 26 partly)."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from pathlib import Path

import pytest

from todobox_deploy.config import TargetConfig
from todobox_deploy.remote.connection import SshConnection
from todobox_deploy.remote.detached import DetachedRun
from todobox_deploy.remote.errors import (
    CommandCancelled,
    LinkLost,
    RunLocked,
    RunStateUnknown,
    UnsafeArgument,
)
from todobox_deploy.sandbox.procs import cmdline, descendants
from todobox_deploy.sandbox.sshd import ThrowawaySshd

from .conftest import Collector, CuttableProxy, make_conn

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

NUMBERED = 'for i in $(seq 1 {n}); do echo "line $i"; sleep {d}; done; exit 3'


def _expected(n: int) -> list[str]:
    return [f"line {i}" for i in range(1, n + 1)]


def test_detached_survives_rst_and_resumes_at_exact_offset(
    proxied_target: TargetConfig, proxy: CuttableProxy, tmp_path: Path
) -> None:
    conn = make_conn(proxied_target, tmp_path)
    conn.connect()
    sink = Collector()
    cut_at: list[float] = []

    def cut_later() -> None:
        time.sleep(1.0)
        cut_at.append(time.monotonic())
        proxy.cut()

    threading.Thread(target=cut_later, daemon=True).start()
    rc = conn.run_detached("rst-1", NUMBERED.format(n=300, d=0.008), sink)
    assert rc == 3
    assert sink.lines() == _expected(300)  # no gap, no duplicate
    info = [(t, lines) for t, s, lines in sink.batches if s == "info"]
    assert any("link lost" in line for _, lines in info for line in lines)
    assert any("re-attached" in line for _, lines in info for line in lines)
    assert info[0][0] - cut_at[0] < 1.0  # the drop was noticed within a second
    log = Path(tmp_path / "runs" / "rst-1" / "log").read_text()
    assert log.splitlines() == _expected(300)
    conn.close()


def test_detached_survives_sigkill_of_session_sshd(
    sshd_server: ThrowawaySshd, conn: SshConnection, tmp_path: Path
) -> None:
    listener = sshd_server.pid
    assert listener is not None
    sink = Collector()

    def kill_sessions() -> None:
        time.sleep(0.8)
        for pid in descendants(listener):  # this test's own session processes
            if cmdline(pid).startswith("sshd:"):
                os.kill(pid, signal.SIGKILL)

    threading.Thread(target=kill_sessions, daemon=True).start()
    assert conn.run_detached("kill-1", NUMBERED.format(n=200, d=0.01), sink) == 3
    assert sink.lines() == _expected(200)
    assert any("re-attached" in line for line in sink.lines("info"))


def test_attached_command_reports_link_lost(
    proxied_target: TargetConfig, proxy: CuttableProxy, tmp_path: Path
) -> None:
    conn = make_conn(proxied_target, tmp_path)
    conn.connect()
    threading.Timer(0.5, proxy.cut).start()
    t0 = time.monotonic()
    with pytest.raises(LinkLost):
        conn.run(["sh", "-c", "while :; do echo tick; sleep 0.05; done"], Collector())
    assert time.monotonic() - t0 < 2
    assert conn.capture(["echo", "back"]).stdout == "back\n"  # automatic reconnect
    conn.close()


def test_frozen_link_detected_by_heartbeat(
    proxied_target: TargetConfig, proxy: CuttableProxy, tmp_path: Path
) -> None:
    conn = make_conn(proxied_target, tmp_path, heartbeat_interval=1.0, heartbeat_timeout=3.0)
    conn.connect()
    threading.Timer(0.3, proxy.frozen.set).start()
    t0 = time.monotonic()
    with pytest.raises(LinkLost, match="heartbeat"):
        conn.run(["sleep", "30"], Collector())
    assert time.monotonic() - t0 < 15
    proxy.frozen.clear()
    conn.close()


def test_second_launch_is_refused_and_cancel_records_rc(conn: SshConnection, tmp_path: Path) -> None:
    run = DetachedRun(conn, "lock-1")
    run.launch("sleep 20")
    with pytest.raises(RunLocked, match="already running"):
        DetachedRun(conn, "lock-1").launch("echo second")
    assert run.state()[0] == "running"
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(CommandCancelled, match="exit code 143"):
        run.follow(Collector(), cancel=cancel)
    assert (tmp_path / "runs" / "lock-1" / "rc").read_text() == "143\n"
    with pytest.raises(RunLocked, match="already finished"):
        run.launch("echo again")
    with pytest.raises(UnsafeArgument):
        DetachedRun(conn, "-rf")


def test_crashed_run_is_reported_not_rerun(conn: SshConnection, tmp_path: Path) -> None:
    run = DetachedRun(conn, "crash-1")
    run.launch("echo started; sleep 20")
    time.sleep(0.3)
    pid = int((tmp_path / "runs" / "crash-1" / "pid").read_text())
    os.killpg(pid, signal.SIGKILL)  # wrapper and job die: no rc is ever written
    time.sleep(0.2)
    sink = Collector()
    with pytest.raises(RunStateUnknown, match="never re-run"):
        run.follow(sink)
    assert sink.lines() == ["started"]
    with pytest.raises(RunStateUnknown):
        run.launch("echo again")


def test_reattach_after_tool_restart(target: TargetConfig, tmp_path: Path) -> None:
    first = make_conn(target, tmp_path)
    run = DetachedRun(first, "restart-1")
    run.launch(NUMBERED.format(n=50, d=0.02))
    first.close()  # the tool "exits"
    second = make_conn(target, tmp_path)
    assert second.run_state("restart-1")[0] in ("running", "finished")
    assert second.run_state("never-started")[0] == "absent"
    sink = Collector()
    assert second.attach("restart-1", sink, offset=0) == 3
    assert sink.lines() == _expected(50)
    sink2 = Collector()
    assert second.attach("restart-1", sink2, offset=len("line 1\nline 2\n")) == 3
    assert sink2.lines() == _expected(50)[2:]
    assert second.run_state("restart-1") == ("finished", 3, len("".join(f"{x}\n" for x in _expected(50))))
    second.close()


def test_detached_stdin_goes_through_a_fifo(conn: SshConnection, tmp_path: Path) -> None:
    sink = Collector()
    assert (
        conn.run_detached(
            "stdin-1",
            ["sh", "-c", 'cat; ls -- "$0"', str(tmp_path / "runs" / "stdin-1")],
            sink,
            stdin=b"from stdin\n",
        )
        == 0
    )
    assert sink.lines()[0] == "from stdin"
    assert "stdin" not in sink.lines()[1:]  # the FIFO was unlinked once opened


def test_gives_up_after_reconnect_timeout_then_attach_resumes_exactly(
    proxied_target: TargetConfig, proxy: CuttableProxy, target: TargetConfig, tmp_path: Path
) -> None:
    conn = make_conn(proxied_target, tmp_path, reconnect_timeout=1.0)
    conn.connect()
    sink = Collector()
    threading.Timer(0.6, proxy.close).start()  # the link drops and stays down
    with pytest.raises(LinkLost, match="re-attach later") as exc:
        conn.run_detached("gone-1", NUMBERED.format(n=150, d=0.01), sink)
    conn.close()
    match = re.search(r"offset=(\d+)", str(exc.value))
    assert match is not None
    direct = make_conn(target, tmp_path)  # e.g. the tool restarted with the persisted offset
    rest = Collector()
    assert direct.attach("gone-1", rest, offset=int(match.group(1))) == 3
    assert sink.lines() + rest.lines() == _expected(150)  # no gap, no duplicate, no torn line
    direct.close()
