"""Run inside a fresh network namespace (``unshare -n``): black-hole a live SSH link with nftables and
print how long the remote layer took to report it, as JSON. Used by test_faults_netns.py."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.remote.sshd_target import make_conn, target_for  # noqa: E402
from todobox_deploy.remote.errors import LinkLost  # noqa: E402
from todobox_deploy.sandbox.sshd import ThrowawaySshd  # noqa: E402


def main() -> int:
    heartbeat = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    with tempfile.TemporaryDirectory(prefix="netns-sshd-") as d:
        sshd = ThrowawaySshd(Path(d) / "sshd")
        sshd.start()
        try:
            conn = make_conn(
                target_for(sshd), Path(d), heartbeat_interval=heartbeat, heartbeat_timeout=2 * heartbeat
            )
            conn.connect()
            port = sshd.port

            def drop() -> None:
                time.sleep(0.5)
                for rule in (
                    ["add", "table", "inet", "bh"],
                    ["add", "chain", "inet", "bh", "in", "{ type filter hook input priority 0 ; }"],
                    ["add", "rule", "inet", "bh", "in", "tcp", "dport", str(port), "drop"],
                    ["add", "rule", "inet", "bh", "in", "tcp", "sport", str(port), "drop"],
                ):
                    subprocess.run(["nft", *rule], check=True)
                dropped.append(time.monotonic())

            dropped: list[float] = []
            threading.Thread(target=drop, daemon=True).start()
            result: dict[str, object] = {}
            try:
                conn.run(["sh", "-c", "while :; do echo tick; sleep 0.2; done"], lambda s, lines: None)
                result["error"] = "command ended without an error"
            except LinkLost as exc:
                result["detected_after"] = round(time.monotonic() - dropped[0], 2)
                result["message"] = str(exc)
            conn.close()
        finally:
            subprocess.run(["nft", "flush", "ruleset"], check=False)
            sshd.stop()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
