"""The per-host deploy lock on the real throwaway sshd (it runs as us on 127.0.0.1: host paths are local)."""

from __future__ import annotations

import dataclasses
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from todobox_deploy.config import TargetConfig
from todobox_deploy.engine.lock import HostLock, HostLocked, LockLost, LockOwner
from todobox_deploy.remote.connection import SshConnection
from todobox_deploy.sandbox.sshd import ThrowawaySshd

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

HERE = socket.gethostname()


@pytest.fixture
def conn(sshd_server: ThrowawaySshd, tmp_path: Path) -> Iterator[SshConnection]:
    target = TargetConfig(
        host=sshd_server.host,
        port=sshd_server.port,
        user=sshd_server.user,
        identity_file=sshd_server.client_key,
        known_hosts=sshd_server.known_hosts,
        ssh_config=Path("/dev/null"),
        connect_timeout=5,
    )
    c = SshConnection(
        target,
        pinned_known_hosts=tmp_path / "pins" / "known_hosts",
        known_hosts_files=[],
        run_root=str(tmp_path / "runs"),
        allow_agent=False,
    )
    c.connect()
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def lock_file(tmp_path: Path) -> Path:
    return tmp_path / "runs" / "deploy.lock"


def owner(operator: str, machine: str = "elsewhere", pid: int = 4242) -> LockOwner:
    return dataclasses.replace(LockOwner.here(operator, f"session-{operator}"), machine=machine, pid=pid)


def on_disk(path: Path) -> LockOwner:
    return LockOwner.from_json(path.read_text())


def wait_for(condition: object, what: str, timeout: float = 5.0) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_owner_json_round_trip() -> None:
    o = LockOwner.here("alice", "2024-05-01_1200")
    assert o.machine == HERE and o.pid == os.getpid() and re.fullmatch(r"[0-9a-f]{32}", o.token)
    assert LockOwner.from_json(o.to_json()) == o
    assert o.started.endswith("+00:00")


def test_second_owner_is_refused_with_who_and_since(conn: SshConnection, lock_file: Path) -> None:
    alice = owner("alice", machine="alice-laptop")
    first = HostLock(conn, alice)
    assert first.acquire() is None
    try:
        assert on_disk(lock_file) == alice
        assert oct(lock_file.stat().st_mode & 0o777) == "0o600"
        assert oct(lock_file.parent.stat().st_mode & 0o777) == "0o700"
        with pytest.raises(HostLocked) as info:
            HostLock(conn, owner("bob", machine="bob-desktop")).acquire()
        err = info.value
        assert err.owner == alice
        assert err.heartbeat_age is not None and 0 <= err.heartbeat_age < 5
        assert str(err) == (
            f"locked by alice@alice-laptop since {alice.started}, "
            f"last heartbeat {int(err.heartbeat_age)} s ago"
        )
        assert re.fullmatch(r"locked by alice@alice-laptop since \S+, last heartbeat \d+ s ago", str(err))
        current = first.current()
        assert current is not None and current[0] == alice
        assert on_disk(lock_file) == alice  # the refusal changed nothing
    finally:
        first.release()


def test_release_then_acquire_and_release_is_idempotent(conn: SshConnection, lock_file: Path) -> None:
    a = HostLock(conn, owner("alice"))
    a.acquire()
    a.release()
    assert not lock_file.exists()
    a.release()  # idempotent
    assert HostLock(conn, owner("alice")).current() is None
    b = HostLock(conn, owner("bob"))
    assert b.acquire() is None
    assert on_disk(lock_file) == b.owner
    b.release()
    assert not lock_file.exists()
    assert [p.name for p in lock_file.parent.iterdir()] == ["deploy.lock.mutex"]  # no temp files left


def test_dead_holder_on_this_machine_is_taken_over(conn: SshConnection, lock_file: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    crashed = owner("alice", machine=HERE, pid=proc.pid)
    HostLock(conn, crashed, heartbeat_interval=0).acquire()
    me = HostLock(conn, owner("alice", machine=HERE, pid=os.getpid()))
    try:
        assert me.acquire() == crashed
        assert on_disk(lock_file) == me.owner
    finally:
        me.release()


def test_live_holder_on_this_machine_is_not_taken_over(conn: SshConnection, lock_file: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        alive = owner("alice", machine=HERE, pid=proc.pid)
        HostLock(conn, alive, heartbeat_interval=0).acquire()
        with pytest.raises(HostLocked) as info:
            HostLock(conn, owner("bob", machine=HERE, pid=os.getpid())).acquire()
        assert info.value.owner == alive
        assert on_disk(lock_file) == alive
    finally:
        proc.kill()
        proc.wait()


def test_dead_pid_on_another_machine_is_not_taken_over(conn: SshConnection, lock_file: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    remote = owner("alice", machine=HERE + "-other", pid=proc.pid)
    HostLock(conn, remote, heartbeat_interval=0).acquire()
    with pytest.raises(HostLocked):
        HostLock(conn, owner("bob", machine=HERE)).acquire()
    assert on_disk(lock_file) == remote


def test_take_over_replaces_and_the_old_holder_loses_it(conn: SshConnection, lock_file: Path) -> None:
    alice = HostLock(conn, owner("alice", machine="alice-laptop"), heartbeat_interval=0.2)
    alice.acquire()
    bob = HostLock(conn, owner("bob", machine="bob-desktop"))
    try:
        assert bob.acquire(take_over=True) == alice.owner
        assert on_disk(lock_file) == bob.owner
        wait_for(lambda: alice.lost, "alice's heartbeat to notice the take-over")
        with pytest.raises(LockLost):
            alice.check()
        # release by a holder that lost it: bob's lock stays
        alice.release()
        assert on_disk(lock_file) == bob.owner
    finally:
        bob.release()
    assert not lock_file.exists()


def test_release_by_a_non_holder_leaves_the_lock(conn: SshConnection, lock_file: Path) -> None:
    alice = HostLock(conn, owner("alice"), heartbeat_interval=0)
    alice.acquire()
    HostLock(conn, owner("bob")).release()  # never acquired
    assert on_disk(lock_file) == alice.owner
    # a holder whose lock was replaced under it (without noticing) does not remove the new one
    carol = owner("carol")
    lock_file.write_text(carol.to_json())
    alice.release()
    assert on_disk(lock_file) == carol


def test_heartbeat_refreshes_the_mtime(conn: SshConnection, lock_file: Path) -> None:
    lock = HostLock(conn, owner("alice"), heartbeat_interval=0.2)
    lock.acquire()
    try:
        old = time.time() - 120
        os.utime(lock_file, (old, old))
        state = lock.current()
        assert state is not None and state[1] is not None and state[1] >= 100
        wait_for(lambda: lock_file.stat().st_mtime > old + 60, "a heartbeat to touch the lock")
        state = lock.current()
        assert state is not None and state[1] is not None and state[1] < 60
        assert not lock.lost
    finally:
        lock.release()


def test_racing_acquirers_exactly_one_wins(conn: SshConnection, lock_file: Path) -> None:
    locks = [HostLock(conn, owner(f"op{i}", machine=f"m{i}"), heartbeat_interval=0) for i in range(20)]
    barrier = threading.Barrier(len(locks))
    results: list[object] = [None] * len(locks)

    def go(i: int) -> None:
        barrier.wait()
        try:
            results[i] = locks[i].acquire()
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(locks))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    winners = [i for i, r in enumerate(results) if r is None]
    assert len(winners) == 1, results
    winner = locks[winners[0]].owner
    assert on_disk(lock_file) == winner
    losers = [r for r in results if r is not None]
    assert all(isinstance(r, HostLocked) and r.owner == winner for r in losers), losers


def test_garbage_lock_file_is_held_by_unknown(conn: SshConnection, lock_file: Path) -> None:
    lock_file.parent.mkdir(mode=0o700)
    lock_file.write_bytes(b'{"operator": "half a\xff')
    lock = HostLock(conn, owner("alice", machine=HERE))
    with pytest.raises(HostLocked) as info:
        lock.acquire()
    assert info.value.owner.operator == "unknown"
    assert str(info.value).startswith("locked by unknown@unknown since unknown, last heartbeat ")
    assert lock_file.read_bytes() == b'{"operator": "half a\xff'  # not silently taken
    state = lock.current()
    assert state is not None and state[0].operator == "unknown"
    assert lock.acquire(take_over=True) is not None  # the operator may still take it explicitly
    try:
        assert on_disk(lock_file) == lock.owner
    finally:
        lock.release()
