"""Secrets while mysqldump runs, PyMySQL over an SSH channel, no local listener (§9 items 27-28, 33-34)."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest

from todobox_deploy.config import DatabaseConfig
from todobox_deploy.remote.connection import SshConnection
from todobox_deploy.remote.errors import RemoteError
from todobox_deploy.remote.mysql import SSH_DB_HOST, mysql_command
from todobox_deploy.remote.secrets import Secrets
from todobox_deploy.sandbox.mariadb import ThrowawayMariaDB

from .conftest import Collector

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

PASSWORD = "Pa55'w\"ord #$(id) ü"
DBNAME = "remote_tests"


@pytest.fixture(scope="module")
def db(mariadb_server: ThrowawayMariaDB) -> Iterator[DatabaseConfig]:
    admin = mariadb_server.admin_connect()
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS {DBNAME}")
        cur.execute(f"CREATE TABLE IF NOT EXISTS {DBNAME}.t (id INT PRIMARY KEY, note VARCHAR(100))")
        cur.execute(f"REPLACE INTO {DBNAME}.t VALUES (1, 'plain'), (2, %s)", (f"leak {PASSWORD} leak",))
        for host in ("localhost", "127.0.0.1"):
            cur.execute("CREATE USER IF NOT EXISTS 'rt_app'@%s IDENTIFIED BY %s", (host, PASSWORD))
            cur.execute(f"GRANT ALL ON {DBNAME}.* TO 'rt_app'@%s", (host,))
    admin.close()
    yield DatabaseConfig(name=DBNAME, user="rt_app", host="127.0.0.1", port=mariadb_server.port)


class ProcScanner:
    """Polls /proc/*/cmdline and /proc/*/environ of every process (we are root) for a needle."""

    def __init__(self, needle: bytes) -> None:
        self.needle, self.hits, self.seen = needle, [], set()  # type: ignore[var-annotated]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for pid in os.listdir("/proc"):
                if not pid.isdigit():
                    continue
                for name in ("cmdline", "environ"):
                    with contextlib.suppress(OSError):
                        data = Path(f"/proc/{pid}/{name}").read_bytes()
                        if self.needle in data:
                            self.hits.append((pid, name, data[:80]))
                        if name == "cmdline":
                            self.seen.add(data.split(b"\0")[0].rsplit(b"/", 1)[-1])

    def __enter__(self) -> ProcScanner:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def test_password_never_visible_while_mysqldump_and_mysql_run(
    conn: SshConnection, db: DatabaseConfig
) -> None:
    secrets = Secrets([PASSWORD])
    sink = Collector()
    # --where with SLEEP keeps mysqldump alive long enough for the scanner to see it
    argv, stdin = mysql_command(
        db, PASSWORD, ["--single-transaction", "--where=SLEEP(0.6)=0", "--skip-extended-insert"], tool="dump"
    )
    argv.append("t")
    with ProcScanner(PASSWORD.encode()) as scan:
        rc = conn.run(argv, sink, stdin=stdin, secrets=secrets)
        sql = "SELECT SLEEP(0.5), CURRENT_USER(); SELECT note FROM t WHERE id = 2"
        client, stdin2 = mysql_command(
            db, PASSWORD, ["--default-character-set=utf8mb4", "-N", "-r", "-e", sql]
        )
        rc2 = conn.run(client, sink, stdin=stdin2, secrets=secrets)
    assert (rc, rc2) == (0, 0), sink.lines("stderr")
    assert scan.hits == []
    assert b"mysqldump" in scan.seen and b"mysql" in scan.seen  # the scanner really saw both clients
    out = "\n".join(sink.lines())
    assert "-- Dump completed" in out
    assert "leak [REDACTED] leak" in out and PASSWORD not in out
    assert "rt_app@" in out


def test_pymysql_over_ssh_channel(conn: SshConnection, db: DatabaseConfig) -> None:
    def listening_inodes() -> set[str]:
        inodes = set()
        for name in ("/proc/net/tcp", "/proc/net/tcp6"):
            for line in Path(name).read_text().splitlines()[1:]:
                f = line.split()
                if f[3] == "0A":
                    inodes.add(f[9])
        mine = set()
        for fd in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError):
                link = os.readlink(f"/proc/self/fd/{fd}")
                if link.startswith("socket:["):
                    mine.add(link[8:-1])
        return inodes & mine

    before = listening_inodes()
    my = conn.open_mysql(db, PASSWORD, read_timeout=1)
    assert my.host == SSH_DB_HOST
    with my.cursor() as cur:
        cur.execute("SELECT COUNT(*), CURRENT_USER() FROM t")
        count, user = cur.fetchone()  # type: ignore[misc]
    assert count == 2 and user.startswith("rt_app@")
    assert listening_inodes() == before  # no local listener was opened
    with pytest.raises(pymysql.err.OperationalError), my.cursor() as cur:
        cur.execute("SELECT SLEEP(3)")
    my.close()
    with pytest.raises(RemoteError, match="cannot connect to the database"):
        conn.open_mysql(DatabaseConfig(name=DBNAME, user="rt_app", port=1), PASSWORD)
    with pytest.raises(RemoteError) as exc:
        conn.open_mysql(db, "wrong password")
    assert "wrong password" not in str(exc.value)
    # after a reconnect a fresh DB connection goes over the new transport
    conn.close()
    conn.connect()
    again = conn.open_mysql(db, PASSWORD)
    with again.cursor() as cur:
        cur.execute("SELECT 1")
        assert cur.fetchone() == (1,)
    again.close()


def test_detached_mysqldump_gets_credentials_over_the_fifo(
    conn: SshConnection, db: DatabaseConfig, tmp_path: Path
) -> None:
    secrets = Secrets([PASSWORD])
    argv, stdin = mysql_command(db, PASSWORD, ["--single-transaction", "--where=SLEEP(0.4)=0"], tool="dump")
    argv.append("t")
    sink = Collector()
    with ProcScanner(PASSWORD.encode()) as scan:
        rc = conn.run_detached("dump-1", argv, sink, stdin=stdin, secrets=secrets)
    assert rc == 0, sink.lines()
    assert scan.hits == [] and b"mysqldump" in scan.seen
    assert any(line.startswith("-- Dump completed") for line in sink.lines())
    run_dir = tmp_path / "runs" / "dump-1"
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "lock",
        "log",
        "pid",
        "rc",
        "started",
    ]  # no stdin file
    assert PASSWORD.encode() not in b"".join(p.read_bytes() for p in run_dir.iterdir())
