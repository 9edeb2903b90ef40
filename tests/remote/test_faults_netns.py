"""A real partition (§9.21 / issue item 5): nftables drops the SSH link inside a private network namespace."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

HELPER = Path(__file__).with_name("netns_blackhole.py")


def _can_unshare() -> bool:
    if not (shutil.which("unshare") and shutil.which("nft") and shutil.which("ip")):
        return False
    return subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _can_unshare(), reason="needs unshare -n (root or user namespaces), nft and ip")
def test_black_holed_link_reported_within_15_seconds() -> None:
    # both configurations run at once: the default heartbeat, and TCP_USER_TIMEOUT alone (heartbeat off)
    procs = {
        hb: subprocess.Popen(
            ["unshare", "-n", sys.executable, str(HELPER), hb],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for hb in ("3", "0")
    }
    results = {}
    for hb, proc in procs.items():
        out, err = proc.communicate(timeout=50)
        assert proc.returncode == 0, err
        results[hb] = json.loads(out.strip().splitlines()[-1])
    assert results["3"]["detected_after"] < 15 and "heartbeat" in results["3"]["message"]
    assert results["0"]["detected_after"] < 15  # the kernel's TCP_USER_TIMEOUT alone also catches it
