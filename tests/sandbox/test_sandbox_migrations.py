"""The demo app's five migrations on real MariaDB: from empty, and d1f2e3c4b5a6's repairs."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from todobox_deploy.sandbox.gitrepo import git
from todobox_deploy.sandbox.manager import SandboxInfo
from todobox_deploy.sandbox.mariadb import ThrowawayMariaDB

pytestmark = pytest.mark.integration

SCRATCH = "todobox_migtest"


@pytest.fixture
def fixed_clone(sandbox: SandboxInfo, tmp_path: Path) -> Iterator[tuple[Path, ThrowawayMariaDB]]:
    """A clone of origin/master (with the fix) and an empty scratch database on the sandbox server."""
    clone = tmp_path / "todobox"
    git("clone", "-q", str(sandbox.directory / "git" / "todobox.git"), str(clone))
    server = ThrowawayMariaDB(sandbox.directory / "db")
    conn = server.admin_connect()
    with conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {SCRATCH}")
        cur.execute(f"CREATE DATABASE {SCRATCH} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    yield clone, server
    conn = server.admin_connect()
    with conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {SCRATCH}")


def flask(clone: Path, server: ThrowawayMariaDB, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "FLASK_APP": "wsgi.py",
        "TODOBOX_ENV_FILE": os.devnull,
        "DATABASE_URL": f"mysql+pymysql://root@127.0.0.1:{server.port}/{SCRATCH}",
    }
    done = subprocess.run(
        [sys.executable, "-m", "flask", *args],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def sql(server: ThrowawayMariaDB, statement: str) -> list[tuple[object, ...]]:
    conn = server.admin_connect(SCRATCH)
    with conn, conn.cursor() as cur:
        cur.execute(statement)
        return list(cur.fetchall())


def test_upgrade_from_empty_reaches_head_and_matches_the_model(
    fixed_clone: tuple[Path, ThrowawayMariaDB],
) -> None:
    clone, server = fixed_clone
    out = flask(clone, server, "db", "upgrade").stderr
    for step in (
        "-> 6793349c088c",
        "6793349c088c -> 366e5694a9ad",
        "366e5694a9ad -> 3e5106ee570c",
        "3e5106ee570c -> c682ef478e45",
        "c682ef478e45 -> d1f2e3c4b5a6",
    ):
        assert step in out
    assert "d1f2e3c4b5a6 (head)" in flask(clone, server, "db", "current").stdout
    flask(clone, server, "db", "check")


def test_fix_repairs_a_missing_index_and_is_idempotent(fixed_clone: tuple[Path, ThrowawayMariaDB]) -> None:
    clone, server = fixed_clone
    flask(clone, server, "db", "upgrade")
    sql(server, "ALTER TABLE `user` DROP INDEX ix_user_api_token")
    sql(server, "UPDATE alembic_version SET version_num = 'c682ef478e45'")
    out = flask(clone, server, "db", "upgrade").stderr
    assert "user.api_token already exists" in out and "creating unique index ix_user_api_token" in out
    rows = sql(server, "SHOW INDEX FROM `user` WHERE Column_name = 'api_token'")
    assert len(rows) == 1 and rows[0][2] == "ix_user_api_token" and rows[0][1] == 0  # Key_name, Non_unique
    flask(clone, server, "db", "downgrade", "c682ef478e45")  # a no-op by design
    assert len(sql(server, "SHOW INDEX FROM `user` WHERE Column_name = 'api_token'")) == 1
    out = flask(clone, server, "db", "upgrade").stderr
    assert "index ix_user_api_token already exists" in out
    flask(clone, server, "db", "check")
