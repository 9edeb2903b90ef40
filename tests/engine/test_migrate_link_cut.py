"""The SSH link cut while the migration's detached run is in the middle of its DDL: the phase re-attaches
and completes, and the migration ran exactly once.

The session reaches the sandbox's sshd through the fault-injecting proxy of the remote tests (``cut()``
resets the live TCP connection). To cut mid-run without a fixed sleep, a transaction of the test holds a
metadata lock on ``user``: the migration's first ALTER provably waits behind it (the server's processlist
says so) when the link is cut, and the lock is let go once the phase has re-attached.
"""

from __future__ import annotations

import dataclasses
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest
from remote.conftest import CuttableProxy, make_conn
from run_helpers import events, wait_until
from statement_log import StatementLog

from todobox_deploy.checklist import CHECKLIST
from todobox_deploy.config import DeployConfig, load_config
from todobox_deploy.core.outcome import PhaseOutcome, PhaseStatus
from todobox_deploy.engine.flow import DeployFlow
from todobox_deploy.engine.phases import PHASES
from todobox_deploy.engine.session import DeploySession
from todobox_deploy.journal.journal import Journal
from todobox_deploy.journal.verify import verify_journal
from todobox_deploy.sandbox.appdb import BUG_REVISION, FIX_REVISION
from todobox_deploy.sandbox.manager import SandboxInfo, sandbox_restore

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

REAL = {"backup", "preflight", "migrate"}  # the rest before migrate is done by the test (by hand)
RERUN_DDL = "ALTER TABLE%user%ADD COLUMN%api_token%"  # 3e5106ee570c's, re-run by the stamp-first plan


@pytest.fixture
def proxy(sandbox: SandboxInfo) -> Iterator[CuttableProxy]:
    p = CuttableProxy(sandbox.ssh_port)
    try:
        yield p
    finally:
        p.close()


@pytest.fixture
def restored(sandbox_reset: SandboxInfo) -> Iterator[SandboxInfo]:
    """The sandbox in the bug state, put back afterwards for the tests that use it as it is."""
    yield sandbox_reset
    sandbox_restore(sandbox_reset.directory)


def _admin(info: SandboxInfo) -> pymysql.connections.Connection:
    return pymysql.connect(unix_socket=str(info.db_socket), user="root", database=info.db_name)


def _ddl_waiting(info: SandboxInfo) -> bool:
    """The server shows an ALTER on `user` waiting for the metadata lock the test holds."""
    with _admin(info) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE STATE LIKE "
            "'Waiting for table metadata lock%' AND INFO LIKE 'ALTER TABLE%user%'"
        )
        row = cur.fetchone()
    return bool(row and row[0])


def _proxied(info: SandboxInfo, proxy: CuttableProxy, tmp_path: Path) -> DeployConfig:
    config = load_config(info.config)
    key_type, key_b64 = (info.directory / "ssh" / "ssh_host_ed25519_key.pub").read_text().split()[:2]
    known_hosts = tmp_path / "proxy_known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{proxy.port} {key_type} {key_b64}\n")
    target = dataclasses.replace(
        config.target, port=proxy.port, known_hosts=known_hosts, run_root=str(tmp_path / "runs")
    )
    return dataclasses.replace(config, target=target)


def _git(info: SandboxInfo, *argv: str) -> str:
    done = subprocess.run(["git", "-C", str(info.app_dir), *argv], check=True, capture_output=True, text=True)
    return done.stdout.strip()


def test_a_link_cut_mid_migration_reattaches_and_the_migration_runs_once(
    restored: SandboxInfo, proxy: CuttableProxy, tmp_path: Path
) -> None:
    info = restored
    config = _proxied(info, proxy, tmp_path)
    conn = make_conn(config.target, tmp_path)
    session = DeploySession(config, connection=conn, environ={})
    path = tmp_path / "journal.jsonl"
    phases = {p: s if p in REAL else dataclasses.replace(s, body=None) for p, s in PHASES.items()}
    flow = DeployFlow(
        CHECKLIST,
        phases,
        session=session,
        operator="t",
        host="h",
        journal=Journal(path, operator="t", host="h"),
        transcript_dir=tmp_path / "transcripts",
    )
    seen: list[str] = []
    result: list[PhaseOutcome] = []
    holder = _admin(info)
    try:
        for phase in flow.order[: flow.order.index("migrate")]:
            if phase in REAL:
                outcome = flow.run(phase, lambda s, ls: seen.extend(ls))
                assert outcome.status.value in ("ok", "warning"), outcome.summary
            else:
                if phase == "deploy_code":  # what deploy_code does: the fast-forward to the fetched fix
                    _git(info, "merge", "--ff-only", "-q", "origin/master")
                flow.by_hand(phase)
            assert flow.confirm(phase, True).accepted
        plan = flow.context.migration_plan
        assert plan is not None and plan[0] == ("stamp", "366e5694a9ad"), plan  # re-runs 3e5106ee570c

        with holder.cursor() as cur:  # a reader's open transaction: the ALTER must wait behind it
            cur.execute("BEGIN")
            cur.execute("SELECT * FROM `user` LIMIT 1")
            cur.fetchall()
        with StatementLog(info.directory) as log:
            worker = threading.Thread(
                target=lambda: result.append(flow.run("migrate", lambda s, ls: seen.extend(ls))),
                daemon=True,
            )
            worker.start()
            wait_until(lambda: _ddl_waiting(info), 60, "the migration's ALTER waiting behind the lock")
            run_id = flow.context.migration_run
            assert run_id and (tmp_path / "runs" / run_id / "started").exists()
            assert not (tmp_path / "runs" / run_id / "rc").exists()  # mid-run

            proxy.cut()
            wait_until(lambda: any("re-attached to run" in ln for ln in seen), 30, "the re-attach")
            holder.rollback()  # the lock goes: the DDL goes on, on the host, while the phase follows it
            worker.join(90)
            assert not worker.is_alive(), "the migrate phase did not finish"
            reruns = log.queries(RERUN_DDL)
    finally:
        holder.close()
        flow.close(0, "the test ended")
        session.close()

    (outcome,) = result
    assert outcome.status is PhaseStatus.OK, outcome.summary
    assert outcome.fact("revision") == f"{BUG_REVISION} -> {FIX_REVISION}"
    text = "\n".join(seen)
    assert "link lost" in text and f"re-attached to run {run_id}" in text
    # exactly once: the server received the re-run DDL once (a second run would send it again, and fail
    # on the duplicate column), the host has one run that started once and ended 0, one launch was said
    assert len(reruns) == 1, reruns
    runs = tmp_path / "runs"
    assert sorted(p.name for p in runs.iterdir() if p.name.startswith("migrate")) == [run_id]
    assert (runs / run_id / "rc").read_text() == "0\n"
    assert len((runs / run_id / "started").read_text().splitlines()) == 1
    log_text = (runs / run_id / "log").read_text()
    assert log_text.count("Running upgrade 366e5694a9ad -> 3e5106ee570c") == 1, log_text
    assert sum(ln.startswith("$ migrate (") for ln in seen) == 1
    # the journal: one migrate run, the reconnect during it, intact
    assert len(events(path, "phase_started", phase="migrate")) == 1
    (finished,) = events(path, "phase_finished", phase="migrate")
    assert finished["status"] == "ok"
    reconnects = events(path, "connection_reestablished")
    assert reconnects and all(e["phase"] == "migrate" for e in reconnects), reconnects
    assert verify_journal(path).ok
    with _admin(info) as admin, admin.cursor() as cur:
        cur.execute("SELECT version_num FROM alembic_version")
        assert [r[0] for r in cur.fetchall()] == [FIX_REVISION]
        cur.execute("SHOW INDEX FROM `user` WHERE Key_name = 'ix_user_api_token' AND Non_unique = 0")
        assert cur.fetchall()
