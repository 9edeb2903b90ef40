"""The sandbox production host, against real sshd, MariaDB, git, supervisord and gunicorn (no mocks)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import paramiko
import pymysql
import pytest

from todobox_deploy.config import load_config
from todobox_deploy.core.envfile import password_in_env_text
from todobox_deploy.sandbox import appdb
from todobox_deploy.sandbox.gitrepo import git
from todobox_deploy.sandbox.http import http_status as probe
from todobox_deploy.sandbox.manager import (
    SandboxInfo,
    _leftovers,
    sandbox_down,
    sandbox_restore,
    sandbox_status,
    sandbox_up,
)
from todobox_deploy.sandbox.mariadb import ThrowawayMariaDB
from todobox_deploy.sandbox.procs import cmdline, pid_alive

pytestmark = pytest.mark.integration

FIX_FILE = "migrations/versions/d1f2e3c4b5a6_fix_api_token_column_ensure_api_token.py"
USERS = 2000


def http_status(url: str) -> int:
    return probe(url, timeout=20)  # gunicorn's first request after a (re)start can be slow


def db_of(info: SandboxInfo) -> ThrowawayMariaDB:
    return ThrowawayMariaDB(info.directory / "db")


def env_password(info: SandboxInfo) -> str:
    assert info.app_dir is not None
    password = password_in_env_text((info.app_dir / ".env").read_text(), "DATABASE_URL")
    assert password, "no DATABASE_URL with a password in the env file"
    return password


def flask(info: SandboxInfo, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    return subprocess.run(
        [sys.executable, "-m", "flask", *args],
        cwd=info.app_dir,
        env={**env, "FLASK_APP": "wsgi.py"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_app_reproduces_the_production_bug(sandbox_reset: SandboxInfo) -> None:
    info = sandbox_reset
    assert info.app_log is not None
    offset = info.app_log.stat().st_size
    assert http_status(info.app_url) == 500
    assert http_status(info.app_url.replace("/users", "/health")) == 200
    deadline = time.monotonic() + 5
    new = ""
    while "Unknown column" not in new and time.monotonic() < deadline:
        time.sleep(0.05)
        new = info.app_log.read_bytes()[offset:].decode(errors="replace")
    assert "1054" in new and "Unknown column 'user.api_token'" in new


def test_database_is_at_c682_without_the_column(sandbox_reset: SandboxInfo) -> None:
    summary = appdb.schema_summary(db_of(sandbox_reset))
    assert summary["alembic_version"] == ["c682ef478e45"]
    assert "api_token" not in summary["columns"]
    assert "token_created_at" not in summary["columns"]
    assert summary["api_token_indexes"] == []
    assert summary["users"] == USERS


def test_app_user_password_lives_only_in_the_env_file(sandbox_reset: SandboxInfo) -> None:
    info = sandbox_reset
    assert info.app_dir is not None
    env_file = info.app_dir / ".env"
    assert env_file.stat().st_mode & 0o777 == 0o600
    password = env_password(info)
    assert len(password) >= 20
    for path in info.directory.rglob("*"):
        if path.is_file() and path != env_file and "data" not in path.parts and path.stat().st_size < 1 << 20:
            assert password not in path.read_text(errors="replace"), path
    conn = pymysql.connect(
        host="127.0.0.1", port=info.db_port, user="todobox", password=password, database="todobox"
    )
    with conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM `user`")
        assert cur.fetchone() == (USERS,)
    with pytest.raises(pymysql.err.OperationalError) as err:
        pymysql.connect(host="127.0.0.1", port=info.db_port, user="todobox", password="wrong")
    assert err.value.args[0] == 1045


def test_clone_is_at_pre_fix_commit_and_origin_has_the_fix(sandbox_reset: SandboxInfo) -> None:
    app = sandbox_reset.app_dir
    assert app is not None
    assert not (app / FIX_FILE).exists()
    assert len(list((app / "migrations" / "versions").glob("*.py"))) == 4
    git("fetch", "-q", "origin", cwd=app)
    assert git("rev-list", "--count", "HEAD..origin/master", cwd=app) == "1"
    assert FIX_FILE in git("ls-tree", "-r", "--name-only", "origin/master", cwd=app).splitlines()
    assert git("status", "--porcelain", cwd=app) == ""
    git("pull", "-q", "origin", "master", cwd=app)
    assert (app / FIX_FILE).exists()
    assert (app / "MIGRATION_FIX_SUMMARY.md").exists() and (app / "MIGRATION_ANALYSIS.md").exists()


def test_the_fix_deploys_and_restore_brings_the_bug_back(sandbox_reset: SandboxInfo) -> None:
    info = sandbox_reset
    assert info.app_dir is not None
    git("pull", "-q", "origin", "master", cwd=info.app_dir)
    upgrade = flask(info, "db", "upgrade")
    assert upgrade.returncode == 0, upgrade.stderr
    assert "Running upgrade c682ef478e45 -> d1f2e3c4b5a6" in upgrade.stderr
    check = flask(info, "db", "check")
    assert check.returncode == 0, check.stdout + check.stderr
    summary = appdb.schema_summary(db_of(info))
    assert summary["alembic_version"] == ["d1f2e3c4b5a6"]
    assert summary["api_token_indexes"] == ["ix_user_api_token"]
    assert http_status(info.app_url) == 200

    restored = sandbox_restore(info.directory)
    summary = appdb.schema_summary(db_of(info))
    assert summary["alembic_version"] == ["c682ef478e45"] and "api_token" not in summary["columns"]
    assert not (info.app_dir / FIX_FILE).exists()
    assert http_status(restored.app_url) == 500
    assert restored.elapsed_s is not None and restored.elapsed_s < 5


def test_host_is_usable_over_ssh(sandbox_reset: SandboxInfo) -> None:
    info = sandbox_reset
    client = paramiko.SSHClient()
    client.load_host_keys(str(info.known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(
        info.ssh_host,
        info.ssh_port,
        username=info.ssh_user,
        key_filename=str(info.identity_file),
        look_for_keys=False,
        allow_agent=False,
        timeout=10,
    )
    config = load_config(info.config)
    try:
        cmd = (
            f"cd {config.app.path} && set -a && . {config.app.env_file} && set +a && "
            f"{config.app.python} -m flask db current && "
            f"supervisorctl -c {config.app.supervisor_config} status {config.app.service_name}"
        )
        _, out, err = client.exec_command(cmd, timeout=120)
        text = out.read().decode()
        assert out.channel.recv_exit_status() == 0, err.read().decode()
        assert "c682ef478e45" in text
        assert "RUNNING" in text
    finally:
        client.close()


def test_deploy_config_loads(sandbox: SandboxInfo) -> None:
    config = load_config(sandbox.config)
    assert config.target.host == "127.0.0.1" and config.target.port == sandbox.ssh_port
    assert config.target.identity_file == sandbox.identity_file
    assert config.target.ssh_config is not None and config.target.ssh_config.read_text() == ""
    assert config.app.service_manager == "supervisor" and config.app.service_name == "todobox"
    assert config.app.check_url == sandbox.app_url
    assert config.app.python == sys.executable
    assert config.database.port == sandbox.db_port and config.database.password_prompt is False
    assert config.database.password_env_file_key == "DATABASE_URL"
    assert config.migration.expected_head == "d1f2e3c4b5a6"
    assert config.migration.previous_revision == "c682ef478e45"
    assert config.migration.migration_file == FIX_FILE
    assert Path(config.backup.directory).is_dir()


def test_up_is_idempotent(sandbox: SandboxInfo) -> None:
    before = sandbox_status(sandbox.directory)
    assert before is not None and before.running
    again = sandbox_up(sandbox.directory, users=USERS)
    assert again.processes == before.processes
    assert again.to_json() | {"elapsed_s": None} == before.to_json() | {"elapsed_s": None}
    assert again.elapsed_s is not None and again.elapsed_s < 3


def test_reset_rebuilds_the_bug_state(sandbox: SandboxInfo) -> None:
    info = sandbox
    assert info.app_dir is not None
    git("pull", "-q", "origin", "master", cwd=info.app_dir)
    assert flask(info, "db", "upgrade").returncode == 0
    before = sandbox_status(info.directory)
    rebuilt = sandbox_up(info.directory, users=USERS, reset=True)
    assert before is not None and rebuilt.processes == before.processes  # servers kept, app restarted
    assert rebuilt.app_url == info.app_url and rebuilt.ssh_port == info.ssh_port
    summary = appdb.schema_summary(db_of(info))
    assert summary["alembic_version"] == ["c682ef478e45"] and "api_token" not in summary["columns"]
    assert summary["users"] == USERS
    assert not (info.app_dir / FIX_FILE).exists()
    assert http_status(rebuilt.app_url) == 500


def test_json_has_exactly_the_documented_keys(sandbox: SandboxInfo) -> None:
    data = sandbox.to_json()
    assert set(data) - {"elapsed_s"} == {"config", "ssh", "db", "app_url", "dir"}
    assert set(data["ssh"]) == {"host", "port", "user", "identity_file", "known_hosts"}
    assert set(data["db"]) == {"host", "port", "socket", "name", "user"}
    assert data["app_url"].endswith("/users")


def test_down_leaves_no_process(tmp_path: Path) -> None:
    directory = tmp_path / ("a-long-sandbox-directory-" * 4)  # sockets must move to short paths
    assert len(str(directory / "supervisor" / "supervisor.sock").encode()) > 108
    assert sandbox_status(directory) is None
    info = sandbox_up(directory, users=50)
    pids = [pid for pid in info.processes.values() if pid is not None]
    assert len(pids) == 3
    assert len(str(info.db_socket).encode()) < 100
    bind = "127.0.0.1:" + info.app_url.split(":")[2].split("/")[0]
    gunicorns = [p for p in _all_pids() if "gunicorn" in cmdline(p) and bind in cmdline(p)]
    assert gunicorns, "gunicorn is not running"
    stopped = sandbox_down(directory)
    assert set(pids) <= set(stopped)
    assert not [p for p in pids + gunicorns if pid_alive(p)]
    assert _leftovers(directory) == []
    assert not [p for p in _all_pids() if str(directory) in cmdline(p)]
    status = sandbox_status(directory)
    assert status is not None and not status.running
    assert sandbox_down(directory) == []


def _all_pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and pid_alive(int(p.name))]
