"""Benchmark: push 1-2 million lines through LogPane headless; print lines/s, key latency and peak memory.

Not collected by pytest (no ``test_`` name). Each scenario runs in its own subprocess so peak RSS is its own:

    python tests/bench_log_pane.py                 # 1,000,000 lines
    python tests/bench_log_pane.py --lines 2000000

Scenarios (the producer is a thread, like the engine's SSH reader):
  idle       no ingest; key latency only                     -> latency baseline
  per_line   stock Log, call_from_thread(write_line) per line -> rate baseline (run on fewer lines)
  unbounded  stock Log, no max_lines, 1,000 lines per call    -> memory baseline
  pane       the wizard's path: make_log_sink (1,000-line LogBatch, <= 4 in flight) -> LogPane.ingest ->
             bounded deque -> 30 Hz drain, <= 2,000 lines per tick (env BENCH_TICK_CAP)
Key latency: a second thread posts a Key event every 50 ms; the binding's action measures send -> handled.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from textual import events  # noqa: E402
from textual.app import App, ComposeResult  # noqa: E402
from textual.binding import Binding  # noqa: E402
from textual.widgets import Log  # noqa: E402

from todobox_deploy.tui.messages import LogBatch  # noqa: E402
from todobox_deploy.tui.sink import make_log_sink  # noqa: E402
from todobox_deploy.tui.widgets.log_pane import LogPane  # noqa: E402

BATCH = 1_000
LINE = "2026-11-24 10:00:00 INFO [alembic.runtime.migration] Running upgrade c682ef478e45 -> d1f2e3c4b5a6 #{}"


class BenchApp(App[None]):
    BINDINGS = [Binding("k", "ping", "ping")]

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode
        self.sent: deque[float] = deque()
        self.latencies: list[float] = []

    def compose(self) -> ComposeResult:
        if self.mode == "pane":
            yield LogPane(max_lines=10_000, tick_cap=int(os.environ.get("BENCH_TICK_CAP", "2000")), fps=30)
        else:
            yield Log(max_lines=None if self.mode == "unbounded" else 10_000)

    def action_ping(self) -> None:
        if self.sent:
            self.latencies.append(time.perf_counter() - self.sent.popleft())

    def on_log_batch(self, message: LogBatch) -> None:
        self.query_one(LogPane).ingest(message.phase_id, message.stream, message.lines)
        if message.ack is not None:
            message.ack()


def _producer(app: BenchApp, mode: str, total: int, done: threading.Event) -> None:
    if mode == "per_line":
        log = app.query_one(Log)
        for i in range(total):
            app.call_from_thread(log.write_line, LINE.format(i))
    elif mode == "unbounded":
        log = app.query_one(Log)
        for start in range(0, total, BATCH):
            app.call_from_thread(log.write_lines, [LINE.format(i) for i in range(start, start + BATCH)])
    elif mode == "pane":
        sink = make_log_sink(app, "migrate")  # the wizard's sink: LogBatch messages with backpressure
        for start in range(0, total, BATCH):
            sink("stdout", [LINE.format(i) for i in range(start, start + BATCH)])
    done.set()


def _keys(app: BenchApp, stop: threading.Event) -> None:
    while not stop.is_set():
        app.sent.append(time.perf_counter())
        app.post_message(events.Key("k", "k"))
        time.sleep(0.05)


async def _run(mode: str, total: int, idle_seconds: float) -> dict[str, Any]:
    app = BenchApp(mode)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.2)
        done, stop = threading.Event(), threading.Event()
        keys = threading.Thread(target=_keys, args=(app, stop), daemon=True)
        start = time.perf_counter()
        keys.start()
        if mode == "idle":
            await asyncio.sleep(idle_seconds)
            done.set()
        else:
            threading.Thread(target=_producer, args=(app, mode, total, done), daemon=True).start()
        while not done.is_set():
            await pilot.pause(0.02)
        if mode == "pane":
            pane = app.query_one(LogPane)
            while pane.ingested < total or pane.pending_count:
                await pilot.pause(0.01)
            shown = pane.log_widget.line_count
        else:
            shown = app.query_one(Log).line_count
        elapsed = time.perf_counter() - start
        stop.set()
        keys.join()
        await pilot.pause(0.1)
    lat = sorted(app.latencies) or [0.0]
    return {
        "mode": mode,
        "lines": 0 if mode == "idle" else total,
        "seconds": elapsed,
        "lines_per_s": (total / elapsed) if mode != "idle" else 0.0,
        "shown": shown,
        "key_p50_ms": statistics.median(lat) * 1000,
        "key_p95_ms": lat[int(0.95 * (len(lat) - 1))] * 1000,
        "key_max_ms": lat[-1] * 1000,
        "keys": len(app.latencies),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _child(mode: str, total: int) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", mode, "--lines", str(total)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=1800).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--per-line-lines", type=int, default=5_000)
    parser.add_argument("--child", choices=["idle", "per_line", "unbounded", "pane"])
    args = parser.parse_args()
    if args.child:
        result = asyncio.run(_run(args.child, args.lines, idle_seconds=3.0))
        print(json.dumps(result))
        return
    runs = {
        "idle": _child("idle", 0),
        "per_line": _child("per_line", args.per_line_lines),
        "unbounded": _child("unbounded", args.lines),
        "pane": _child("pane", args.lines),
    }
    print(f"{'scenario':<10} {'lines':>9} {'lines/s':>10} {'key p50/p95/max ms':>22} {'peak RSS MiB':>13}")
    for r in runs.values():
        lat = f"{r['key_p50_ms']:.1f}/{r['key_p95_ms']:.1f}/{r['key_max_ms']:.1f}"
        print(
            f"{r['mode']:<10} {r['lines']:>9} {r['lines_per_s']:>10,.0f} {lat:>22} {r['peak_rss_mib']:>13.1f}"
        )
    pane, base, unb, idle = runs["pane"], runs["per_line"], runs["unbounded"], runs["idle"]
    print()
    print(f"LogPane rate vs one-call-per-line:     x{pane['lines_per_s'] / base['lines_per_s']:.0f}")
    print(f"LogPane rate vs unbounded batched Log: x{pane['lines_per_s'] / unb['lines_per_s']:.2f}")
    print(f"LogPane key p95 vs idle key p95:       x{pane['key_p95_ms'] / max(idle['key_p95_ms'], 0.01):.1f}")
    print(f"LogPane peak RSS vs unbounded Log:     x{pane['peak_rss_mib'] / unb['peak_rss_mib']:.2f}")
    print(f"LogPane peak RSS vs idle app:          x{pane['peak_rss_mib'] / idle['peak_rss_mib']:.2f}")


if __name__ == "__main__":
    main()
