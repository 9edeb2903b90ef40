"""Benchmark the cockpit headless: session-wide search and monitoring tails, while a phase streams.

Not collected by pytest (no ``test_`` name). Each scenario runs in its own subprocess (its own peak RSS):

    python tests/bench_cockpit.py                      # all scenarios
    python tests/bench_cockpit.py --lines 1000000 --seconds 10

Scenarios (the real DeployApp, wizard, LogPane, monitoring screen and search screen; fake sources):
  idle     no streams; key latency only                                          -> latency baseline
  search   1,000,000 transcript lines on disk (11 phases) while the first phase streams 20,000 lines/s
           into the wizard: the search screen searches the session for an early, a common and a late
           needle, 3 times each; time to first results (search start -> first hits handled on the UI
           thread; medians and max), total time
  monitor  three monitoring tails at 10,000 lines/s each (fake host: 500 lines every 50 ms per tail, as the
           remote layer batches,
           through make_log_sink into TailPanes) plus a phase streaming 20,000 lines/s into the wizard
Key latency: a thread posts a Key event every 50 ms; an app binding's action measures send -> handled.
Targets (issue 9): search first results <= 100 ms; key p95 <= 25 ms; memory bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, ClassVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from textual import events  # noqa: E402
from textual.binding import Binding, BindingType  # noqa: E402

from todobox_deploy.checklist import CHECKLIST  # noqa: E402
from todobox_deploy.config import (  # noqa: E402
    AppConfig,
    BackupConfig,
    DatabaseConfig,
    DeployConfig,
    MigrationConfig,
    TargetConfig,
)
from todobox_deploy.core.outcome import PhaseOutcome, PhaseStatus  # noqa: E402
from todobox_deploy.engine.flow import DeployFlow  # noqa: E402
from todobox_deploy.engine.phases.spec import PhaseCall, PhaseSpec  # noqa: E402
from todobox_deploy.remote.errors import CommandCancelled  # noqa: E402
from todobox_deploy.remote.secrets import Secrets  # noqa: E402
from todobox_deploy.tui.app import DeployApp  # noqa: E402
from todobox_deploy.tui.cockpit import cockpit_for  # noqa: E402
from todobox_deploy.tui.screens.search import SessionSearchScreen  # noqa: E402

LINE = "2026-11-24 10:00:00 INFO [alembic.runtime.migration] Running upgrade c682ef478e45 -> d1f2e3c4b5a6 #{}"
PHASE_RATE = 20_000
REPEATS = 3  # each search, for medians
TICKS = 20  # batches per second: what the remote layer's LineBatcher hands on (1,000 lines or 50 ms)
TAIL_RATE = 10_000
NEEDLES = {"early": "needle-early", "common": "commonword", "late": "needle-late"}
CONFIG = DeployConfig(
    TargetConfig(host="bench"),
    AppConfig(path="/srv/app", log_files=("/var/log/app/app.log",), service_name="app"),
    DatabaseConfig(name="app", user="app", error_log="/var/log/mysql/error.log"),
    MigrationConfig(expected_head="d1f2e3c4b5a6"),
    BackupConfig(directory="/srv/backups"),
)


class BenchApp(DeployApp):
    CSS_PATH = str(Path(__file__).resolve().parents[1] / "todobox_deploy" / "tui" / "app.tcss")
    BINDINGS: ClassVar[list[BindingType]] = [
        *DeployApp.BINDINGS,
        Binding("f9", "ping", "ping", show=False, priority=True),  # a modal (the search) cannot hide it
    ]

    def __init__(self, flow: DeployFlow) -> None:
        super().__init__(flow, max_log_lines=10_000)
        self.sent: deque[float] = deque()
        self.latencies: list[float] = []

    def action_ping(self) -> None:
        if self.sent:
            self.latencies.append(time.perf_counter() - self.sent.popleft())


def _streaming_body(rate: int) -> Any:
    """A phase that streams ``rate`` lines/s (in TICKS batches a second) until cancelled."""

    def body(call: PhaseCall) -> PhaseOutcome:
        per_tick, n, start = max(1, rate // TICKS), 0, time.perf_counter()
        while not call.cancel.is_set():
            call.sink("stdout", [LINE.format(i) for i in range(n, n + per_tick)])
            n += per_tick
            delay = start + n / rate - time.perf_counter()
            if delay > 0:
                call.cancel.wait(delay)
        return PhaseOutcome(PhaseStatus.CANCELLED, f"streamed {n} lines")

    return body


class FakeHost:
    """``tail -F`` / ``journalctl -f`` at ``rate`` lines/s each until cancelled; counts what it sent."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.sent: dict[str, int] = {}

    def run(self, argv: Any, sink: Any, *, cancel: threading.Event | None = None, **_: Any) -> int:
        assert cancel is not None
        key = shlex.join(argv) if isinstance(argv, list) else argv
        per_tick, n, start = max(1, self.rate // TICKS), 0, time.perf_counter()
        while not cancel.is_set():
            sink("stdout", [f"{key[-24:]} {LINE.format(i)}" for i in range(n, n + per_tick)])
            n += per_tick
            self.sent[key] = n
            delay = start + n / self.rate - time.perf_counter()
            if delay > 0:
                cancel.wait(delay)
        raise CommandCancelled("cancelled")


class FakeSession:
    def __init__(self, rate: int) -> None:
        self.config = CONFIG
        self.connection = FakeHost(rate)
        self.secrets = Secrets()
        self.on_reconnect: Any = None

    def take_commands(self) -> list[Any]:
        return []


def _flow(transcripts: Path, session: FakeSession | None) -> DeployFlow:
    specs = {p: PhaseSpec(p, p, None) for p in CHECKLIST.phases()}
    first = CHECKLIST.phases()[0]
    specs[first] = PhaseSpec(first, first, _streaming_body(PHASE_RATE))
    return DeployFlow(
        CHECKLIST,
        specs,
        session=session,
        operator="bench",
        host="bench",
        transcript_dir=transcripts,  # type: ignore[arg-type]
    )


def _write_transcripts(directory: Path, total: int) -> list[Path]:
    """``total`` lines over the 11 phases after the first (the first one streams live)."""
    phases = CHECKLIST.phases()[1:]
    directory.mkdir(parents=True, exist_ok=True)
    per = total // len(phases)
    paths = []
    for k, phase in enumerate(phases):
        path = directory / f"{phase}.log"
        with path.open("w", encoding="utf-8") as fh:
            for i in range(per):
                text = LINE.format(i)
                if k == 0 and i == per // 10:
                    text += " needle-early"
                if k == len(phases) - 1 and i == per - 5:
                    text += " needle-late"
                if i % 1000 == 0:
                    text += " commonword"
                fh.write(f"10:00:00   {text}\n")
        paths.append(path)
    return paths


def _keys(app: BenchApp, stop: threading.Event) -> None:
    while not stop.is_set():
        app.sent.append(time.perf_counter())
        app.post_message(events.Key("f9", None))  # not a character: an Input in focus passes it on
        time.sleep(0.05)


async def _drain_keys(app: BenchApp, pilot: Any, timeout: float = 30.0) -> None:
    """Every key sent is handled before the app closes (a late one would hit a torn-down screen)."""
    end = time.perf_counter() + timeout
    while app.sent and time.perf_counter() < end:
        await pilot.pause(0.01)


def _rss_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _latency(app: BenchApp) -> dict[str, float]:
    lat = sorted(app.latencies) or [0.0]
    return {
        "key_p50_ms": statistics.median(lat) * 1000,
        "key_p95_ms": lat[int(0.95 * (len(lat) - 1))] * 1000,
        "key_max_ms": lat[-1] * 1000,
        "keys": float(len(app.latencies)),
    }


async def _idle(seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        app = BenchApp(_flow(Path(tmp) / "t", None))
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause(0.3)
            stop = threading.Event()
            keys = threading.Thread(target=_keys, args=(app, stop), daemon=True)
            keys.start()
            await asyncio.sleep(seconds)
            stop.set()
            keys.join()
            await _drain_keys(app, pilot)
            await pilot.pause(0.1)
    return {"mode": "idle", **_latency(app), "peak_rss_mib": _peak()}


def _peak() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _search(total: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        transcripts = Path(tmp) / "transcripts"
        paths = _write_transcripts(transcripts, total)
        size = sum(p.stat().st_size for p in paths)
        grep_start = time.perf_counter()
        subprocess.run(["grep", "-ic", "needle-late", *map(str, paths)], capture_output=True, check=False)
        grep_seconds = time.perf_counter() - grep_start
        flow = _flow(transcripts, None)
        app = BenchApp(flow)
        results: dict[str, Any] = {
            "mode": "search",
            "lines": total,
            "mib": size / 2**20,
            "grep_s": grep_seconds,
        }
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause(0.3)
            wizard = app.wizard
            assert wizard is not None
            wizard.start_phase(CHECKLIST.phases()[0])
            await pilot.pause(0.5)  # the phase streams from here on
            stop = threading.Event()
            keys = threading.Thread(target=_keys, args=(app, stop), daemon=True)
            keys.start()
            cockpit_for(app).open_search()
            await pilot.pause(0.2)
            screen = app.screen
            assert isinstance(screen, SessionSearchScreen)
            for name, needle in NEEDLES.items():
                firsts, totals = [], []
                for _ in range(REPEATS):
                    started = time.perf_counter()
                    screen.start(needle)
                    while not screen.done:
                        await pilot.pause(0.005)
                    firsts.append((screen.first_result_seconds or float("nan")) * 1000)
                    totals.append((time.perf_counter() - started) * 1000)
                    await pilot.pause(0.5)  # the results list fills (paced) while keys go on
                results[f"{name}_first_ms"] = statistics.median(firsts)
                results[f"{name}_first_max_ms"] = max(firsts)
                results[f"{name}_total_ms"] = statistics.median(totals)
                results[f"{name}_hits"] = screen.total
            stop.set()
            keys.join()
            await _drain_keys(app, pilot)
            flow.request_cancel()
            await app.workers.wait_for_complete()
            results["phase_lines"] = wizard.log_pane.ingested
            await pilot.pause(0.1)
    return {**results, **_latency(app), "peak_rss_mib": _peak()}


async def _monitor(seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        session = FakeSession(TAIL_RATE)
        flow = _flow(Path(tmp) / "t", session)
        app = BenchApp(flow)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause(0.3)
            wizard = app.wizard
            assert wizard is not None
            wizard.start_phase(CHECKLIST.phases()[0])
            monitor = cockpit_for(app).open_monitor()
            await pilot.pause(0.5)
            rss = [_rss_mib()]
            stop = threading.Event()
            keys = threading.Thread(target=_keys, args=(app, stop), daemon=True)
            keys.start()
            start = time.perf_counter()
            sent_before = sum(session.connection.sent.values())
            for _ in range(4):
                await asyncio.sleep(seconds / 4)
                rss.append(_rss_mib())
            elapsed = time.perf_counter() - start
            tails = len(session.connection.sent)
            sent = sum(session.connection.sent.values()) - sent_before
            stop.set()
            keys.join()
            await _drain_keys(app, pilot)
            windows = {p.tail_id: len(p.window(p.tail_id)) for p in monitor.panes}
            ingested = {p.tail_id: p.ingested for p in monitor.panes}
            phase_lines = wizard.log_pane.ingested
            flow.request_cancel()
            await pilot.pause(0.2)
    return {
        "mode": "monitor",
        "tails": tails,
        "tail_lines_per_s_each": sent / elapsed / max(tails, 1),
        "phase_lines": phase_lines,
        "windows": windows,
        "ingested": ingested,
        "rss_mib": rss,
        **_latency(app),
        "peak_rss_mib": _peak(),
    }


def _child(mode: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        mode,
        "--lines",
        str(args.lines),
        "--seconds",
        str(args.seconds),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=1800).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--child", choices=["idle", "search", "monitor"])
    args = parser.parse_args()
    if args.child == "idle":
        print(json.dumps(asyncio.run(_idle(args.seconds / 2))))
        return
    if args.child == "search":
        print(json.dumps(asyncio.run(_search(args.lines))))
        return
    if args.child == "monitor":
        print(json.dumps(asyncio.run(_monitor(args.seconds))))
        return
    idle, search, monitor = (_child(m, args) for m in ("idle", "search", "monitor"))

    def lat(r: dict[str, Any]) -> str:
        return f"{r['key_p50_ms']:.1f}/{r['key_p95_ms']:.1f}/{r['key_max_ms']:.1f} ms ({int(r['keys'])} keys)"

    print(f"idle:    key p50/p95/max {lat(idle)}, peak RSS {idle['peak_rss_mib']:.0f} MiB")
    print(
        f"search:  {search['lines']:,} transcript lines ({search['mib']:.0f} MiB) while a phase streams "
        f"{PHASE_RATE:,} lines/s ({search['phase_lines']:,} lines ingested)"
    )
    for name in NEEDLES:
        print(
            f"  {name:<7} first results {search[f'{name}_first_ms']:7.1f} ms "
            f"(max {search[f'{name}_first_max_ms']:.1f}), "
            f"all {search[f'{name}_total_ms']:7.1f} ms, {search[f'{name}_hits']} hits"
        )
    print(f"  key p50/p95/max {lat(search)}, peak RSS {search['peak_rss_mib']:.0f} MiB")
    rss = ", ".join(f"{r:.0f}" for r in monitor["rss_mib"])
    print(
        f"monitor: {monitor['tails']} tails at {monitor['tail_lines_per_s_each']:,.0f} lines/s each "
        f"+ a phase at {PHASE_RATE:,} lines/s; key p50/p95/max {lat(monitor)}"
    )
    print(
        f"  RSS over the run (MiB): {rss}; windows kept: {monitor['windows']}; "
        f"ingested: {monitor['ingested']}"
    )
    print()
    late_ratio = search["late_total_ms"] / 1000 / max(search["grep_s"], 1e-6)
    print(f"search first results (early needle) vs target 100 ms:  x{search['early_first_ms'] / 100:.2f}")
    print(f"search first results (common needle) vs target 100 ms: x{search['common_first_ms'] / 100:.2f}")
    print(f"search whole session (late needle) vs grep -ic:         x{late_ratio:.2f}")
    print(f"search key p95 vs target 25 ms:                         x{search['key_p95_ms'] / 25:.2f}")
    idle_p95 = max(idle["key_p95_ms"], 0.01)
    print(f"search key p95 vs idle key p95:                         x{search['key_p95_ms'] / idle_p95:.1f}")
    print(f"monitor key p95 vs target 25 ms:                        x{monitor['key_p95_ms'] / 25:.2f}")
    print(f"monitor key p95 vs idle key p95:                        x{monitor['key_p95_ms'] / idle_p95:.1f}")
    growth = monitor["rss_mib"][-1] - monitor["rss_mib"][2]
    print(f"monitor RSS growth over the second half of the run:    {growth:+.1f} MiB")


if __name__ == "__main__":
    main()
