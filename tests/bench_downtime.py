"""Benchmark (not collected by pytest): the app's downtime during a deploy vs the bare migration time.

    python tests/bench_downtime.py [--users 200000] [--repeat 3] [--dir SANDBOX_DIR]

On one sandbox, in the bug state each time:
(a) the bare migration: the pre-flight's plan run by hand on the host with the app left up (the time the
    database itself needs: the floor of any downtime with this checklist's order);
(b) a whole deploy, ``todobox-deploy run --plain --yes``: its downtime is from the stop being sent
    (``app_down_at``) to the first healthy answer (``app_up_at``), both journaled to the millisecond;
(c) the bare restart: the service manager's stop, then its start, sent over an open SSH connection, the
    health URL polled every 20 ms from here until it answers 200 (the floor of the online option's
    downtime);
(d) a whole deploy with the online option, ``run --plain --yes --online``: the migration runs while the
    old code serves, the downtime is the restart into the new code.
Prints medians, the ratios and the targets: (b) <= 1.2 x (a) + 0.5 s; (d) <= (c) + 0.5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from todobox_deploy.config import load_config  # noqa: E402
from todobox_deploy.engine.service import service_command  # noqa: E402
from todobox_deploy.remote.connection import SshConnection  # noqa: E402
from todobox_deploy.sandbox.http import http_status  # noqa: E402
from todobox_deploy.sandbox.manager import SandboxInfo, sandbox_down, sandbox_restore, sandbox_up  # noqa: E402

CLI = [sys.executable, "-m", "todobox_deploy"]


def bare_migration(info: SandboxInfo) -> float:
    """The migration the deploy runs (stamp the revision before the lost one, then upgrade), timed alone."""
    sandbox_restore(info.directory)
    app = str(info.app_dir)
    subprocess.run(["git", "-C", app, "merge", "-q", "--ff-only", "origin/master"], check=True)
    steps = [["flask", "db", "stamp", "366e5694a9ad"], ["flask", "db", "upgrade", "d1f2e3c4b5a6"]]
    t0 = time.perf_counter()
    for step in steps:
        subprocess.run(
            [*CLI, "exec", "--config", str(info.config), "--app", "--", *step],
            check=True,
            capture_output=True,
        )
    return time.perf_counter() - t0


def bare_restart(info: SandboxInfo) -> float:
    """Seconds from sending the service manager's stop to the health URL's first 200 after the start that
    follows it (polled from here every 20 ms): a restart whose 200 can only come from the new process."""
    config = load_config(info.config)
    stop, start = service_command(config.app, "stop"), service_command(config.app, "start")
    assert stop is not None and start is not None and config.app.health_url
    conn = SshConnection(config.target)
    conn.connect()
    try:
        t0 = time.perf_counter()
        conn.run(stop, lambda s, ls: None)
        thread = threading.Thread(target=conn.run, args=(start, lambda s, ls: None))
        thread.start()
        while True:
            try:
                if http_status(config.app.health_url, timeout=1.0) == 200:
                    break
            except OSError:
                pass
            if time.perf_counter() - t0 > 60:
                raise SystemExit("the app did not come back after a restart within 60 s")
            time.sleep(0.02)
        up = time.perf_counter() - t0
        thread.join()
        return up
    finally:
        conn.close()


def deploy_downtime(info: SandboxInfo, state: Path, *extra: str) -> tuple[float, float]:
    """(downtime, whole deploy) of one unattended deploy from the bug state."""
    sandbox_restore(info.directory)
    env = {**os.environ, "XDG_STATE_HOME": str(state)}
    t0 = time.perf_counter()
    run = subprocess.run(
        [*CLI, "run", "--config", str(info.config), "--plain", "--yes", *extra],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    total = time.perf_counter() - t0
    if run.returncode != 0:
        raise SystemExit(f"the deploy failed (exit {run.returncode}):\n{run.stdout[-3000:]}")
    journal = next(line.split(": ", 1)[1] for line in run.stdout.splitlines() if line.startswith("journal: "))
    changes: dict[str, str] = {}
    for line in Path(journal).read_text().splitlines():
        entry = json.loads(line)
        if entry["event"] == "context_updated":
            changes.update(entry["changes"])
    down = datetime.fromisoformat(changes["app_down_at"])
    up = datetime.fromisoformat(changes["app_up_at"])
    return (up - down).total_seconds(), total


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="use (and keep) the sandbox in this directory")
    args = parser.parse_args()
    directory = args.dir or Path(tempfile.mkdtemp(prefix="bench-downtime-"))
    info = sandbox_up(directory, users=args.users)
    try:
        bare, down, whole, restart, online = [], [], [], [], []
        with tempfile.TemporaryDirectory() as state:
            for _ in range(args.repeat):  # interleaved, so that load on the machine hits all alike
                bare.append(bare_migration(info))
                d, t = deploy_downtime(info, Path(state))
                down.append(d)
                whole.append(t)
                restart.append(bare_restart(info))
                online.append(deploy_downtime(info, Path(state), "--online")[0])
        b, d, t = statistics.median(bare), statistics.median(down), statistics.median(whole)
        r, o = statistics.median(restart), statistics.median(online)

        def runs(xs: list[float]) -> str:
            return ", ".join(f"{x:.2f}" for x in xs)

        print(f"users: {args.users}, runs: {args.repeat}")
        print(f"bare migration (stamp + upgrade, app up):  {b:6.2f} s   runs {runs(bare)}")
        print(f"downtime of a deploy (stop -> healthy):     {d:6.2f} s   runs {runs(down)}")
        print(f"whole unattended deploy:                   {t:6.2f} s")
        print(f"downtime / bare migration: {d / b:.2f}x; target <= 1.2x + 0.5 s = {1.2 * b + 0.5:.2f} s: "
              f"{'met' if d <= 1.2 * b + 0.5 else 'NOT met'}")  # fmt: skip
        print(f"bare restart (restart -> healthy):          {r:6.2f} s   runs {runs(restart)}")
        print(f"downtime with --online (restart -> healthy): {o:6.2f} s   runs {runs(online)}")
        print(f"online downtime / bare restart: {o / r:.2f}x; target <= restart + 0.5 s = {r + 0.5:.2f} s: "
              f"{'met' if o <= r + 0.5 else 'NOT met'}")  # fmt: skip
    finally:
        if args.dir is None:
            sandbox_down(directory)


if __name__ == "__main__":
    main()
