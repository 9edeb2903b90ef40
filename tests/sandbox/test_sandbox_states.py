"""The sandbox's named states (``sandbox up --state NAME``) on the one session sandbox, switched in place."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

from todobox_deploy.config import ExpectedSchema, HttpCheck, load_config
from todobox_deploy.core.envfile import password_in_env_text
from todobox_deploy.sandbox import appdb
from todobox_deploy.sandbox.cli import add_sandbox_parser, run_sandbox_command
from todobox_deploy.sandbox.gitrepo import git
from todobox_deploy.sandbox.http import http_status
from todobox_deploy.sandbox.manager import SandboxInfo, sandbox_status, sandbox_up
from todobox_deploy.sandbox.mariadb import ThrowawayMariaDB
from todobox_deploy.sandbox.states import STATES

pytestmark = pytest.mark.integration

Switch = Callable[[str], SandboxInfo]
USERS = 2000
BUG, FIX = "c682ef478e45", "d1f2e3c4b5a6"
COLUMN = ("varchar(64)", "YES")  # COLUMN_TYPE, IS_NULLABLE
INDEX = [("ix_user_api_token", 0)]  # Key_name, Non_unique
# state -> (api_token column, its indexes, alembic_version, work tree at origin/master, GET /users)
EXPECTED: dict[str, tuple[tuple[str, str] | None, list[tuple[str, int]], str, bool, int | None]] = {
    "bug": (None, [], BUG, False, 500),
    "fixed": (COLUMN, INDEX, FIX, True, 200),
    "column-no-index": (COLUMN, [], BUG, False, 200),
    "half-applied": (COLUMN, INDEX, BUG, False, 200),
    "import-queries-user": (None, [], BUG, False, None),  # None: nothing listens
    "renamed-wsgi": (None, [], BUG, False, 500),
}
STARTUP_QUERY = "User.query.first()"


def db_facts(info: SandboxInfo) -> dict[str, Any]:
    """What root sees: alembic_version, the api_token column and its indexes, the users."""
    conn = ThrowawayMariaDB(info.directory / "db").admin_connect("todobox")
    with conn, conn.cursor() as cur:
        cur.execute("SELECT version_num FROM alembic_version")
        versions = [row[0] for row in cur.fetchall()]
        cur.execute(
            "SELECT COLUMN_TYPE, IS_NULLABLE FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA = 'todobox' AND TABLE_NAME = 'user' AND COLUMN_NAME = 'api_token'"
        )
        column = cur.fetchone()
        cur.execute("SHOW INDEX FROM `user` WHERE Column_name = 'api_token'")
        indexes = [(row[2], row[1]) for row in cur.fetchall()]
        cur.execute("SHOW CREATE TABLE `user`")
        create = cur.fetchone()
        cur.execute("CHECKSUM TABLE `user`")
        checksum = cur.fetchone()
        cur.execute("SELECT COUNT(*) FROM `user`")
        count = cur.fetchone()
    return {
        "versions": versions,
        "column": tuple(column) if column else None,
        "indexes": indexes,
        "create": create[1] if create else None,
        "checksum": checksum[1] if checksum else None,
        "users": count[0] if count else None,
    }


def users_status(info: SandboxInfo, path: str = "/users") -> int | None:
    """The app's HTTP status, None when nothing answers."""
    try:
        return http_status(info.app_url.replace("/users", path), timeout=20)
    except OSError:
        return None


def on_host(info: SandboxInfo, *argv: str) -> subprocess.CompletedProcess[str]:
    """``todobox-deploy exec --config C --app -- ARGV``: over SSH, in the app dir and its environment."""
    return subprocess.run(
        [sys.executable, "-m", "todobox_deploy", "exec", "--config", str(info.config), "--app", "--", *argv],
        capture_output=True,
        text=True,
        timeout=120,
    )


def supervisorctl(info: SandboxInfo, *args: str) -> subprocess.CompletedProcess[str]:
    config = load_config(info.config)
    assert config.app.supervisor_config is not None
    argv = [sys.executable, "-m", "supervisor.supervisorctl", "-c", config.app.supervisor_config, *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def program_state(info: SandboxInfo) -> str:
    """supervisord's word for the app program (RUNNING, EXITED, FATAL, ...)."""
    fields = supervisorctl(info, "status", "todobox").stdout.split()
    return fields[1] if len(fields) > 1 else "?"


def gives_up(info: SandboxInfo, timeout: float = 30.0) -> str:
    """Await supervisord giving up on the app (EXITED or FATAL); its last word when time runs out."""
    deadline = time.monotonic() + timeout
    state = program_state(info)
    while state not in ("EXITED", "FATAL") and time.monotonic() < deadline:
        time.sleep(0.1)
        state = program_state(info)
    return state


def git_facts(info: SandboxInfo) -> dict[str, str]:
    app = info.app_dir
    assert app is not None
    git("fetch", "-q", "origin", cwd=app)
    return {
        "head": git("rev-parse", "HEAD", cwd=app),
        "origin": git("rev-parse", "origin/master", cwd=app),
        "behind": git("rev-list", "--count", "HEAD..origin/master", cwd=app),
        "ahead": git("rev-list", "--count", "origin/master..HEAD", cwd=app),
        "dirty": git("status", "--porcelain", cwd=app),
        "files": git("ls-files", cwd=app),
    }


@pytest.mark.parametrize("name", list(EXPECTED))
def test_state_facts(name: str, sandbox_state: Switch) -> None:
    column, indexes, version, at_fix, status = EXPECTED[name]
    info = sandbox_state(name)
    assert info.state == name and info.elapsed_s is not None and info.elapsed_s < 5
    status_info = sandbox_status(info.directory)
    assert status_info is not None and status_info.state == name and status_info.running
    facts = db_facts(info)
    assert facts["versions"] == [version]
    assert facts["column"] == column
    assert facts["indexes"] == indexes
    assert facts["users"] == USERS
    g = git_facts(info)
    assert g["dirty"] == "" and g["ahead"] == "0"
    assert g["behind"] == ("0" if at_fix else "1")
    assert (g["head"] == g["origin"]) is at_fix
    assert users_status(info) == status
    assert users_status(info, "/health") == (None if status is None else 200)


def test_import_queries_user_breaks_flask_until_the_schema_is_fixed(
    sandbox: SandboxInfo, sandbox_state: Switch
) -> None:
    assert sandbox.app_log is not None
    offset = sandbox.app_log.stat().st_size
    info = sandbox_state("import-queries-user")
    assert info.app_dir is not None
    boot = sandbox.app_log.read_bytes()[offset:].decode(errors="replace")
    assert "Unknown column 'user.api_token'" in boot and "Worker failed to boot" in boot
    for ref in ("HEAD", "origin/master"):  # the query at import is in both commits
        assert STARTUP_QUERY in git("show", f"{ref}:app/__init__.py", cwd=info.app_dir)
    assert "d1f2e3c4b5a6" in git("ls-tree", "-r", "--name-only", "origin/master", cwd=info.app_dir)
    assert program_state(info) in ("EXITED", "FATAL")  # supervisord gave up on gunicorn
    done = on_host(info, "flask", "db", "current")
    out = done.stdout + done.stderr
    assert done.returncode != 0
    assert "1054" in out and "Unknown column 'user.api_token'" in out
    assert "Context impl" not in out  # Alembic never ran

    appdb.apply_fix_ddl(ThrowawayMariaDB(info.directory / "db"), column=True, index=True)
    done = on_host(info, "flask", "db", "current")
    assert done.returncode == 0, done.stdout + done.stderr
    assert BUG in done.stdout
    assert supervisorctl(info, "start", "todobox").returncode == 0
    assert users_status(info) == 200


def test_renamed_wsgi_app_does_not_come_back_after_the_deploy(sandbox_state: Switch) -> None:
    info = sandbox_state("renamed-wsgi")
    app = info.app_dir
    assert app is not None
    fix_files = git("ls-tree", "-r", "--name-only", "origin/master", cwd=app).splitlines()
    assert "wsgi.py" not in fix_files and "serve.py" in fix_files
    assert "migrations/versions/d1f2e3c4b5a6_fix_api_token_column_ensure_api_token.py" in fix_files
    assert (app / "wsgi.py").exists() and not (app / "serve.py").exists()
    assert load_config(info.config).app.wsgi_file == "wsgi.py"
    assert "wsgi:app" in (info.directory / "supervisor" / "supervisord.conf").read_text()

    git("pull", "-q", "origin", "master", cwd=app)
    supervisorctl(info, "restart", "todobox")
    assert gives_up(info) in ("EXITED", "FATAL")
    assert users_status(info) is None and users_status(info, "/health") is None
    assert info.app_log is not None and "No module named 'wsgi'" in info.app_log.read_text()


def test_deploy_config_has_the_checks(sandbox: SandboxInfo) -> None:
    config = load_config(sandbox.config)
    assert config.app.wsgi_file == "wsgi.py"
    assert config.app.checks == (HttpCheck(url=sandbox.app_url, name="user list", expect_status=200),)
    assert config.migration.expect == (
        ExpectedSchema("user", "api_token", "varchar(64)", "ix_user_api_token", True),
    )
    assert config.app.orm_check and config.app.token_check
    for snippet in (config.app.orm_check, config.app.token_check):
        compile(snippet, "<check>", "exec")  # one line of valid Python
    text = sandbox.config.read_text()
    assert sandbox.app_dir is not None
    env_file = sandbox.app_dir / ".env"
    assert env_file.stat().st_mode & 0o777 == 0o600
    password = password_in_env_text(env_file.read_text(), "DATABASE_URL")
    assert password and len(password) >= 20 and password not in text


def test_orm_and_token_checks_fail_on_the_bug_and_pass_when_fixed(sandbox_state: Switch) -> None:
    info = sandbox_state("bug")
    config = load_config(info.config)
    assert config.app.orm_check and config.app.token_check
    python = config.app.python
    for snippet in (config.app.orm_check, config.app.token_check):
        done = on_host(info, python, "-c", snippet)
        assert done.returncode == 1 and "1054" in done.stderr

    info = sandbox_state("fixed")
    orm = on_host(info, python, "-c", config.app.orm_check)
    assert orm.returncode == 0, orm.stderr
    assert "ORM query ok: user 1 (user1), api_token NULL" in orm.stdout
    token = on_host(info, python, "-c", config.app.token_check)
    assert token.returncode == 0, token.stderr
    assert "API token check ok: user 1 got a 64-character token" in token.stdout
    conn = ThrowawayMariaDB(info.directory / "db").admin_connect("todobox")
    with conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM `user` WHERE api_token IS NOT NULL")
        assert cur.fetchone() == (0,)  # rolled back


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="todobox-deploy")
    add_sandbox_parser(parser.add_subparsers(dest="command", required=True))
    return run_sandbox_command(parser.parse_args(list(argv)))


def test_up_state_switches_and_status_shows_it(
    sandbox_state: Switch, capsys: pytest.CaptureFixture[str]
) -> None:
    d = str(sandbox_state("bug").directory)
    assert run_cli("sandbox", "up", "--dir", d, "--state", "half-applied", "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["state"] == "half-applied"
    assert run_cli("sandbox", "up", "--dir", d) == 0  # no --state: keeps the state
    assert "state   half-applied: " + STATES["half-applied"].summary in capsys.readouterr().out
    assert run_cli("sandbox", "status", "--dir", d, "--json") == 0
    assert json.loads(capsys.readouterr().out)["state"] == "half-applied"
    with pytest.raises(SystemExit):
        run_cli("sandbox", "up", "--dir", d, "--state", "no-such-state")
    assert "invalid choice" in capsys.readouterr().err


def test_reset_with_a_state_rebuilds_into_it(sandbox_state: Switch) -> None:
    info = sandbox_state("bug")
    rebuilt = sandbox_up(info.directory, users=USERS, reset=True, state="column-no-index")
    assert rebuilt.state == "column-no-index"
    facts = db_facts(rebuilt)
    assert facts["column"] == COLUMN and facts["indexes"] == [] and facts["users"] == USERS
    assert users_status(rebuilt) == 200


def test_switching_back_to_bug_restores_exactly_the_bug_state(sandbox_state: Switch) -> None:
    info = sandbox_state("bug")
    before_db, before_git = db_facts(info), git_facts(info)
    for name in STATES:
        sandbox_state(name)
    after = sandbox_state("bug")
    assert after.state == "bug"
    assert db_facts(after) == before_db
    assert git_facts(after) == before_git
    assert users_status(after) == 500 and users_status(after, "/health") == 200
    assert program_state(after) == "RUNNING"
