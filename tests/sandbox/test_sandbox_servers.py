"""The throwaway sshd and MariaDB servers, against the real binaries."""

from __future__ import annotations

from pathlib import Path

import paramiko
import pytest

from todobox_deploy.sandbox.mariadb import ThrowawayMariaDB
from todobox_deploy.sandbox.ports import free_port, port_accepts
from todobox_deploy.sandbox.procs import pid_alive
from todobox_deploy.sandbox.sshd import ThrowawaySshd


def test_free_port_is_bindable() -> None:
    port = free_port()
    assert 0 < port < 65536
    assert not port_accepts(port)


@pytest.mark.integration
def test_sshd_accepts_operator_key_with_pinned_host_key(sshd_server: ThrowawaySshd) -> None:
    line = sshd_server.known_hosts.read_text().strip()
    assert line.startswith(f"[127.0.0.1]:{sshd_server.port} ssh-ed25519 ")
    assert sshd_server.client_key.stat().st_mode & 0o777 == 0o600
    client = paramiko.SSHClient()
    client.load_host_keys(str(sshd_server.known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(
        sshd_server.host,
        sshd_server.port,
        username=sshd_server.user,
        key_filename=str(sshd_server.client_key),
        look_for_keys=False,
        allow_agent=False,
        timeout=10,
    )
    try:
        _, out, _ = client.exec_command("echo sandbox-ok")
        assert out.read().strip() == b"sandbox-ok"
    finally:
        client.close()


@pytest.mark.integration
def test_sshd_restarts_from_same_directory(tmp_path: Path) -> None:
    first = ThrowawaySshd(tmp_path / "ssh")
    first.start()
    port, key = first.port, first.host_key_pub.read_text()
    pid = first.pid
    first.stop()
    assert not pid_alive(pid)
    again = ThrowawaySshd(tmp_path / "ssh")
    again.start()
    try:
        assert again.port == port
        assert again.host_key_pub.read_text() == key
        assert again.pid is not None and again.pid != pid
    finally:
        again.stop()


@pytest.mark.integration
def test_mariadb_root_over_socket(mariadb_server: ThrowawayMariaDB) -> None:
    assert len(str(mariadb_server.socket).encode()) < 100
    conn = mariadb_server.admin_connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM mysql.user WHERE User = ''")
            assert cur.fetchone() == (0,)
            cur.execute("SELECT @@port")
            assert cur.fetchone() == (mariadb_server.port,)
    finally:
        conn.close()
    assert mariadb_server.port != 3306


@pytest.mark.integration
def test_mariadb_long_directory_gets_short_socket(tmp_path: Path) -> None:
    server = ThrowawayMariaDB(tmp_path / ("d" * 110))
    server.start()
    try:
        assert len(str(server.socket).encode()) < 100
        assert server.is_running()
        pid = server.pid
    finally:
        server.stop()
    assert not pid_alive(pid)
