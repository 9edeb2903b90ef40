"""Benchmark (not collected by pytest): the backup phase vs a dump by hand over OpenSSH, on the sandbox.

    python tests/bench_backup.py [--users 200000] [--repeat 3] [--dir SANDBOX_DIR]

Brings up a sandbox with ``--users`` seeded users (or uses the one in ``--dir``), then times, as the
operator waits for them (connection set-up included):
(a) the backup phase: pre-checks, detached dump | gzip on the host, read-back verification, sha256, prune;
(b) by hand: ``ssh host 'mariadb-dump … | gzip' > file`` with the same dump flags (option file on stdin);
(c) by hand with ``gzip -1``, the level the phase uses (so (a)/(c) is the phase's own overhead).
Prints MiB/s of uncompressed SQL for each (medians of ``--repeat`` runs) and the ratios.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from todobox_deploy.config import DeployConfig, load_config  # noqa: E402
from todobox_deploy.core.context import DeployContext  # noqa: E402
from todobox_deploy.core.envfile import password_in_env_text  # noqa: E402
from todobox_deploy.core.outcome import PhaseStatus  # noqa: E402
from todobox_deploy.engine import backup_cmd as bc  # noqa: E402
from todobox_deploy.engine.phases.backup import backup  # noqa: E402
from todobox_deploy.engine.phases.spec import PhaseCall  # noqa: E402
from todobox_deploy.engine.session import DeploySession  # noqa: E402
from todobox_deploy.remote.connection import SshConnection  # noqa: E402
from todobox_deploy.remote.mysql import mysql_command  # noqa: E402
from todobox_deploy.sandbox.manager import SandboxInfo, sandbox_down, sandbox_up  # noqa: E402


def run_phase(config: DeployConfig, pins: Path) -> tuple[float, str]:
    session = DeploySession(
        config, connection_factory=lambda: SshConnection(config.target, pinned_known_hosts=pins), environ={}
    )
    call = PhaseCall(session, lambda stream, lines: None, threading.Event(), DeployContext())
    t0 = time.perf_counter()
    try:
        outcome = backup(call)
    finally:
        session.close()
    seconds = time.perf_counter() - t0
    if outcome.status is not PhaseStatus.OK or call.context.backup is None:
        raise SystemExit(f"the backup phase did not succeed: {outcome.summary}")
    return seconds, call.context.backup.path


def by_hand(info: SandboxInfo, config: DeployConfig, password: str, out: Path, level: str | None) -> float:
    client = bc.DumpClient("mariadb-dump", "mariadb-dump", "MariaDB")
    flags = bc.dump_flags(config.database, client, server_is_mariadb=True, gtid_mode=None)
    argv, option_file = mysql_command(config.database, password, flags, tool="dump")
    argv[0] = "mariadb-dump"
    remote = shlex.join(argv) + " | " + ("gzip" if level is None else f"gzip {level}")
    ssh = [
        "ssh",
        "-q",
        "-F",
        "/dev/null",
        "-i",
        str(info.identity_file),
        "-o",
        f"UserKnownHostsFile={info.known_hosts}",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "BatchMode=yes",
        "-p",
        str(info.ssh_port),
        f"{info.ssh_user}@{info.ssh_host}",
        remote,
    ]
    t0 = time.perf_counter()
    with out.open("wb") as fh:
        subprocess.run(ssh, input=option_file, stdout=fh, check=True)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="an existing sandbox directory to use")
    args = parser.parse_args()

    own = args.dir is None
    work = Path(tempfile.mkdtemp(prefix="bench-backup-"))
    directory = work / "sandbox" if own else args.dir
    print(f"sandbox in {directory} ({'new, ' + str(args.users) + ' users' if own else 'existing'}) ...")
    info = sandbox_up(directory, users=args.users)
    try:
        config = load_config(info.config)
        config = dataclasses.replace(
            config, backup=dataclasses.replace(config.backup, directory=str(work / "backups"), keep=1)
        )
        assert info.app_dir is not None
        password = password_in_env_text((info.app_dir / ".env").read_text(), "DATABASE_URL")
        assert password
        phase_s, hand_s, hand1_s = [], [], []
        path = ""
        for i in range(args.repeat):
            seconds, path = run_phase(config, work / "pins")
            phase_s.append(seconds)
            hand_s.append(by_hand(info, config, password, work / f"hand-{i}.sql.gz", None))
            hand1_s.append(by_hand(info, config, password, work / f"hand1-{i}.sql.gz", "-1"))
        sql_bytes = len(gzip.decompress(Path(path).read_bytes()))
        mib = sql_bytes / 2**20
        rows = [
            ("backup phase (gzip -1, verified)", statistics.median(phase_s), Path(path).stat().st_size),
            (
                "by hand: ssh 'dump | gzip' > file",
                statistics.median(hand_s),
                (work / "hand-0.sql.gz").stat().st_size,
            ),
            (
                "by hand: ssh 'dump | gzip -1' > file",
                statistics.median(hand1_s),
                (work / "hand1-0.sql.gz").stat().st_size,
            ),
        ]
        print(f"\nSQL dumped: {mib:.1f} MiB ({sql_bytes} bytes); medians of {args.repeat} runs\n")
        print(f"{'method':40} {'seconds':>8} {'MiB/s':>8} {'file MiB':>9}")
        for name, seconds, size in rows:
            print(f"{name:40} {seconds:8.2f} {mib / seconds:8.1f} {size / 2**20:9.1f}")
        phase = rows[0][1]
        print(f"\nratio phase/by hand (throughput): {rows[1][1] / phase:.2f}")
        print(f"ratio phase/by hand with gzip -1:  {rows[2][1] / phase:.2f}")
        print(f"all runs (s): phase {phase_s}, hand {hand_s}, hand -1 {hand1_s}")
    finally:
        if own:
            sandbox_down(directory)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
