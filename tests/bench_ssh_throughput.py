"""Benchmark (not collected by pytest): output throughput through the remote layer vs OpenSSH ``ssh cat``.

    python tests/bench_ssh_throughput.py [--size-mib 512] [--repeat 3] [--cipher aes128-gcm@openssh.com]
                                         [--rekey-limit 1G]

Starts a throwaway sshd on 127.0.0.1 (``RekeyLimit`` 1G: a long stream crosses server-initiated rekeys),
writes a log of 87-byte lines of the given size (one line per MiB holds the secret), and streams it with
(a) OpenSSH ``ssh -c CIPHER host cat FILE > /dev/null`` (its connect time subtracted),
(b) a raw paramiko channel on SshConnection's transport (``recv(1 MiB)``, paramiko's own window and pipe),
(c) ``SshConnection.run(["cat", FILE], sink, secrets=...)``: the LINE path (decode, redact, batch lines),
(d) ``SshConnection.run_bytes`` into /dev/null: the BYTE path of ``todobox-deploy exec``, no secrets,
(e) the same with the secret registered (redaction on).
Prints MiB/s (median and slowest of ``--repeat`` interleaved runs), the ratio of each median to OpenSSH's,
the client's CPU time per MiB, the longest pause between two deliveries to the sink (a rekey stall shows
there) and the rekeys seen, then whether the targets are met: byte path >= 0.6x, line path >= 0.5x, no stall.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.remote.sshd_target import (  # noqa: E402
    RekeyCounter,
    RekeyingSshd,
    counting_rekeys,
    make_conn,
    openssh_argv,
    target_for,
)
from todobox_deploy.remote import connection as connmod  # noqa: E402
from todobox_deploy.remote.connection import SshConnection  # noqa: E402
from todobox_deploy.remote.secrets import MASK, Secrets  # noqa: E402
from todobox_deploy.sandbox.sshd import ThrowawaySshd  # noqa: E402

SECRET = "Pw-0f-the-DB"
LINE = b"2026-11-24T10:00:00Z INFO some realistic log line with a few words in it, number 12345\n"
SECRET_LINE = b"2026-11-24T10:00:00Z INFO connecting as app with password " + SECRET.encode() + b" to db\n"
BYTE_TARGET = 0.6
LINE_TARGET = 0.5
STALL_SECONDS = 1.0


@dataclass
class Run:
    seconds: float
    cpu: float  # CPU seconds of the client: this process, or the ssh process
    gap: float | None = None  # longest pause between two deliveries (None: not measurable)
    rekeys: int | None = None


def _cpu(children: bool = False) -> float:
    t = os.times()
    return t.children_user + t.children_system if children else t.user + t.system


@dataclass
class Row:
    label: str
    runs: list[Run] = field(default_factory=list)


class Deliveries:
    """Times each delivery to a sink: the longest pause between two."""

    def __init__(self) -> None:
        self.last: float | None = None
        self.gap = 0.0

    def tick(self) -> None:
        now = time.perf_counter()
        if self.last is not None and now - self.last > self.gap:
            self.gap = now - self.last
        self.last = now


class Bench:
    def __init__(
        self,
        sshd: ThrowawaySshd,
        conn: SshConnection,
        cipher: str,
        path: Path,
        secrets: int,
        rekeys: RekeyCounter,
    ) -> None:
        self.sshd, self.conn, self.cipher, self.path = sshd, conn, cipher, path
        self.size = path.stat().st_size
        self.lines = self.size // len(LINE)
        self.redacted_size = self.size - secrets * (len(SECRET) - len(MASK))
        self.devnull = os.open(os.devnull, os.O_WRONLY)
        self.rekeys = rekeys

    def _timed(self, body: Callable[[Deliveries], None]) -> Run:
        seen = Deliveries()
        before = self.rekeys.count
        t0, cpu = time.perf_counter(), _cpu()
        body(seen)
        return Run(time.perf_counter() - t0, _cpu() - cpu, seen.gap, self.rekeys.count - before)

    def openssh(self) -> Run:
        base = openssh_argv(self.sshd, "-c", self.cipher)
        t0, cpu = time.perf_counter(), _cpu(children=True)
        subprocess.run([*base, "true"], check=True)
        connect, connect_cpu = time.perf_counter() - t0, _cpu(children=True) - cpu
        t0, cpu = time.perf_counter(), _cpu(children=True)
        subprocess.run([*base, "cat", str(self.path)], check=True, stdout=subprocess.DEVNULL)
        return Run(time.perf_counter() - t0 - connect, _cpu(children=True) - cpu - connect_cpu)

    def raw_paramiko(self) -> Run:
        def body(seen: Deliveries) -> None:
            chan = self.conn.transport().open_session()
            chan.exec_command(f"cat {self.path}")
            n = 0
            while data := chan.recv(1 << 20):
                seen.tick()
                n += len(data)
            assert chan.recv_exit_status() == 0 and n == self.size, n
            chan.close()

        return self._timed(body)

    def lines_path(self) -> Run:
        def body(seen: Deliveries) -> None:
            count = 0

            def sink(stream: str, batch: list[str]) -> None:
                nonlocal count
                seen.tick()
                count += len(batch)

            rc = self.conn.run(["cat", str(self.path)], sink, secrets=Secrets([SECRET]))
            assert rc == 0 and count == self.lines, count

        return self._timed(body)

    def byte_path(self, secrets: Secrets | None) -> Run:
        def body(seen: Deliveries) -> None:
            n = 0

            def sink(stream: str, data: bytes) -> None:
                nonlocal n
                seen.tick()
                n += len(data)
                os.write(self.devnull, data)

            assert self.conn.run_bytes(["cat", str(self.path)], sink, secrets=secrets) == 0
            assert n == (self.redacted_size if secrets else self.size), n  # every secret masked

        return self._timed(body)


def write_log(path: Path, size_mib: int) -> int:
    """``size_mib`` MiB of log lines, the first of each MiB with the secret; returns the secrets written."""
    block = SECRET_LINE + LINE * ((1 << 20) // len(LINE))
    block = block[: (1 << 20) // len(LINE) * len(LINE)]  # whole lines, the secret's line included
    secrets = 0
    with path.open("wb") as f:
        remaining = size_mib << 20
        while remaining >= len(block):
            f.write(block)
            secrets += 1
            remaining -= len(block)
        f.write(LINE * (remaining // len(LINE)))
    return secrets


def report(rows: dict[str, Row], size: int, repeat: int) -> None:
    mib = size / 2**20
    base = mib / statistics.median(r.seconds for r in rows["a"].runs)
    print(
        f"{'path':52s} {'MiB/s':>7s} {'ratio':>6s} {'slowest':>8s} {'CPU ms/MiB':>10s} "
        f"{'longest gap':>12s} {'rekeys':>7s}"
    )
    ratio: dict[str, float] = {}
    for key, row in rows.items():
        rate = mib / statistics.median(r.seconds for r in row.runs)
        ratio[key] = rate / base
        slowest = mib / max(r.seconds for r in row.runs)
        gaps = [r.gap for r in row.runs if r.gap is not None]
        longest = f"{max(gaps):.3f} s" if gaps else "-"
        counts = [r.rekeys for r in row.runs if r.rekeys is not None]
        keys = f"{min(counts)}-{max(counts)}" if counts else "-"
        cpu = 1000 * statistics.median(r.cpu for r in row.runs) / mib
        print(
            f"({key}) {row.label:48s} {rate:7.1f} {ratio[key]:5.2f}x {slowest:8.1f} {cpu:10.2f} "
            f"{longest:>12s} {keys:>7s}"
        )
    print(f"medians of {repeat} interleaved runs; ratio = median MiB/s / OpenSSH's median MiB/s")
    print("CPU ms/MiB: the client's CPU time (the ssh process, or this Python process), not sshd's")

    def verdict(ok: bool) -> str:
        return "target met" if ok else "target NOT met"

    print(
        f"byte path (d) >= {BYTE_TARGET}x OpenSSH: {verdict(ratio['d'] >= BYTE_TARGET)} ({ratio['d']:.2f}x)"
    )
    print(
        f"line path (c) >= {LINE_TARGET}x OpenSSH: {verdict(ratio['c'] >= LINE_TARGET)} ({ratio['c']:.2f}x)"
    )
    ours = [r for key in "bcde" for r in rows[key].runs]
    gap = max(r.gap or 0.0 for r in ours)
    rekeys = min(r.rekeys or 0 for r in ours)
    if rekeys == 0:
        print(
            f"no rekey stall over {mib:.0f} MiB: not exercised (a run saw no rekey; --rekey-limit), "
            f"longest gap {gap:.3f} s"
        )
    else:
        ok = gap < STALL_SECONDS
        print(
            f"no rekey stall over {mib:.0f} MiB: {verdict(ok)} "
            f"(at least {rekeys} rekeys per run, longest gap {gap:.3f} s, limit {STALL_SECONDS:g} s)"
        )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mib", type=int, default=512)
    ap.add_argument("--cipher", default="aes128-gcm@openssh.com")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--rekey-limit", default="1G", help="sshd's RekeyLimit (data before a rekey)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-ssh-") as d, counting_rekeys() as rekeys:
        sshd = RekeyingSshd(Path(d) / "sshd", args.rekey_limit)
        sshd.start()
        try:
            path = Path(d) / "big.log"
            secrets = write_log(path, args.size_mib)
            connmod.PREFERRED_CIPHERS = (args.cipher,)  # type: ignore[assignment]
            conn = make_conn(target_for(sshd), Path(d))
            conn.connect()
            bench = Bench(sshd, conn, args.cipher, path, secrets, rekeys)
            print(
                f"file {bench.size / 2**20:.0f} MiB ({secrets} secrets), "
                f"cipher {getattr(conn.transport(), 'remote_cipher', '?')}, "
                f"sshd RekeyLimit {args.rekey_limit}",
                flush=True,
            )
            rows = {
                "a": Row(f"OpenSSH ssh -c {args.cipher.split('@')[0]} host cat"),
                "b": Row("paramiko channel, recv(1 MiB), bytes only"),
                "c": Row("run: lines (decode, redact, batch)"),
                "d": Row("run_bytes: byte path, no secret"),
                "e": Row("run_bytes: byte path, secret registered"),
            }
            measure: dict[str, Callable[[], Run]] = {
                "a": bench.openssh,
                "b": bench.raw_paramiko,
                "c": bench.lines_path,
                "d": lambda: bench.byte_path(None),
                "e": lambda: bench.byte_path(Secrets([SECRET])),
            }
            for _ in range(args.repeat):  # interleaved, so that a busy moment hits every row alike
                for key, run in measure.items():
                    rows[key].runs.append(run())
            conn.close()
            report(rows, bench.size, args.repeat)
        finally:
            sshd.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
