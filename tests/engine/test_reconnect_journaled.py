"""A dropped SSH link is re-made on the next command, and the deploy's journal says so (and stays intact).

The session reaches the sandbox's sshd through the fault-injecting proxy of the remote tests, which resets
the live TCP connection on ``cut()``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from remote.conftest import CuttableProxy, make_conn

from todobox_deploy.checklist import CHECKLIST
from todobox_deploy.config import load_config
from todobox_deploy.engine.flow import DeployFlow
from todobox_deploy.engine.phases import PHASES
from todobox_deploy.engine.session import DeploySession
from todobox_deploy.journal.journal import Journal
from todobox_deploy.journal.verify import verify_journal
from todobox_deploy.sandbox.manager import SandboxInfo

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.fixture
def proxy(sandbox: SandboxInfo) -> Iterator[CuttableProxy]:
    p = CuttableProxy(sandbox.ssh_port)
    try:
        yield p
    finally:
        p.close()


def wait_until(condition: Any, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout:g} s waiting for {what}"
        time.sleep(0.02)


def test_a_cut_link_is_reconnected_and_journaled(
    sandbox: SandboxInfo, proxy: CuttableProxy, tmp_path: Path
) -> None:
    config = load_config(sandbox.config)
    # the sandbox's known_hosts names its sshd by port: list the same key for the proxy's port
    key_type, key_b64 = (sandbox.directory / "ssh" / "ssh_host_ed25519_key.pub").read_text().split()[:2]
    known_hosts = tmp_path / "proxy_known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{proxy.port} {key_type} {key_b64}\n")
    assert config.target.host == "127.0.0.1"
    target = dataclasses.replace(config.target, port=proxy.port, known_hosts=known_hosts)
    config = dataclasses.replace(config, target=target)

    conn = make_conn(target, tmp_path)
    session = DeploySession(config, connection=conn, environ={})
    path = tmp_path / "j.jsonl"
    journal = Journal(path, operator="t", host="h")
    flow = DeployFlow(
        CHECKLIST, PHASES, session=session, operator="t", host="h", journal=journal, transcript_dir=tmp_path
    )
    try:
        assert session.capture(["true"]).exit_status == 0  # the first connect is not a reconnect
        assert not [e for e in journal.read() if e["event"] == "connection_reestablished"]

        proxy.cut()
        wait_until(lambda: not conn.is_connected, "the client to notice the reset link")
        result = session.capture(["echo", "back"])  # reconnects first
        assert (result.exit_status, result.stdout) == (0, "back\n")
        assert conn.is_connected
    finally:
        flow.close(3, "the test ended")
        session.close()

    entries: list[dict[str, Any]] = journal.read()
    found = [e for e in entries if e["event"] == "connection_reestablished"]
    assert len(found) == 1, entries
    assert isinstance(found[0]["reason"], str) and found[0]["reason"].strip(), found[0]
    assert found[0]["phase"] is None  # between phases
    assert [e["event"] for e in entries][-1] == "session_ended"
    check = verify_journal(path)
    assert check.ok, check
