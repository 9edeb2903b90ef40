"""Benchmark (not collected by pytest): paramiko throughput through the remote layer vs OpenSSH ``ssh cat``.

    python tests/bench_ssh_throughput.py [--size-mib 1024] [--cipher aes128-gcm@openssh.com] [--repeat 3]

Starts a throwaway sshd on 127.0.0.1, writes a file of the given size, then streams it with
(a) OpenSSH ``ssh -c CIPHER host cat FILE > /dev/null`` (connect time subtracted),
(b) a raw paramiko channel through SshConnection's transport (``recv(1 MiB)``, bytes only),
(c) ``SshConnection.run(["cat", FILE], sink)`` (line splitting, UTF-8 decoding, batching),
and prints MiB/s and the ratios to OpenSSH. Medians of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.remote.sshd_target import make_conn, target_for  # noqa: E402
from todobox_deploy.remote import connection as connmod  # noqa: E402
from todobox_deploy.remote.connection import SshConnection  # noqa: E402
from todobox_deploy.sandbox.sshd import ThrowawaySshd  # noqa: E402


def _ssh_base(sshd: ThrowawaySshd, cipher: str) -> list[str]:
    return [
        "ssh",
        "-q",
        "-i",
        str(sshd.client_key),
        "-o",
        f"UserKnownHostsFile={sshd.known_hosts}",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "BatchMode=yes",
        "-F",
        "/dev/null",
        "-c",
        cipher,
        "-p",
        str(sshd.port),
        f"{sshd.user}@{sshd.host}",
    ]


def openssh(sshd: ThrowawaySshd, cipher: str, path: Path) -> float:
    base = _ssh_base(sshd, cipher)
    t0 = time.perf_counter()
    subprocess.run([*base, "true"], check=True)
    connect = time.perf_counter() - t0
    t0 = time.perf_counter()
    subprocess.run([*base, "cat", str(path)], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0 - connect


def raw_paramiko(conn: SshConnection, path: Path) -> float:
    t = conn.transport()
    t0 = time.perf_counter()
    chan = t.open_session()
    chan.exec_command(f"cat {path}")
    n = 0
    while data := chan.recv(1 << 20):
        n += len(data)
    chan.recv_exit_status()
    chan.close()
    return time.perf_counter() - t0


def layer(conn: SshConnection, path: Path) -> float:
    lines = 0

    def sink(stream: str, batch: list[str]) -> None:
        nonlocal lines
        lines += len(batch)

    t0 = time.perf_counter()
    rc = conn.run(["cat", str(path)], sink)
    assert rc == 0
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--cipher", default="aes128-gcm@openssh.com")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-ssh-") as d:
        sshd = ThrowawaySshd(Path(d) / "sshd")
        sshd.start()
        try:
            data = Path(d) / "big.log"
            line = b"2026-11-24T10:00:00Z INFO some realistic log line with a few words in it, number 12345\n"
            with data.open("wb") as f:
                block = line * ((1 << 20) // len(line) + 1)
                remaining = args.size_mib << 20
                while remaining > 0:
                    chunk = block[:remaining]
                    f.write(chunk)
                    remaining -= len(chunk)
            size = data.stat().st_size
            connmod.PREFERRED_CIPHERS = (args.cipher,)
            conn = make_conn(target_for(sshd), Path(d))
            conn.connect()
            print(f"file {size / 2**20:.0f} MiB, cipher {conn.transport().remote_cipher}", flush=True)
            results: dict[str, list[float]] = {"openssh": [], "paramiko raw": [], "remote layer": []}
            for _ in range(args.repeat):  # interleaved runs
                results["openssh"].append(openssh(sshd, args.cipher, data))
                results["paramiko raw"].append(raw_paramiko(conn, data))
                results["remote layer"].append(layer(conn, data))
            conn.close()
            mib = size / 2**20
            base = mib / statistics.median(results["openssh"])
            header = f"{'':14s} {'median':>8s}        {'ratio':>6s}"
            print(f"{header}   slowest of {args.repeat} (a rekey stall would show here)")
            for name, times in results.items():
                rate = mib / statistics.median(times)
                slowest = mib / max(times)
                print(f"{name:14s} {rate:8.1f} MiB/s  {rate / base:6.0%} of OpenSSH   {slowest:8.1f} MiB/s")
        finally:
            sshd.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
