"""Render the sandbox's deploy config (the schema of ``todobox_deploy.config``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from todobox_deploy.sandbox.appdb import BUG_REVISION, DB_NAME, DB_USER, FIX_REVISION

MIGRATION_FILE = "migrations/versions/d1f2e3c4b5a6_fix_api_token_column_ensure_api_token.py"


@dataclass(frozen=True)
class DeployTomlValues:
    ssh_host: str
    ssh_port: int
    ssh_user: str
    identity_file: Path
    known_hosts: Path
    ssh_config: Path
    app_dir: Path
    python: str
    env_file: Path
    supervisor_config: Path
    app_port: int
    app_log: Path
    db_log: Path
    db_port: int
    backup_dir: Path


def _q(value: object) -> str:
    """A TOML basic string (JSON escapes are valid TOML escapes)."""
    return json.dumps(str(value))


def render_deploy_toml(v: DeployTomlValues) -> str:
    base = f"http://127.0.0.1:{v.app_port}"
    return f"""# todobox-deploy config for the local sandbox "production host" (`sandbox up` rewrites it)

[target]
host = {_q(v.ssh_host)}
port = {v.ssh_port}
user = {_q(v.ssh_user)}
identity_file = {_q(v.identity_file)}
known_hosts = {_q(v.known_hosts)}
ssh_config = {_q(v.ssh_config)}  # empty: the operator's ~/.ssh/config does not apply

[app]
path = {_q(v.app_dir)}
python = {_q(v.python)}
env_file = {_q(v.env_file)}
flask_app = "wsgi.py"
service_manager = "supervisor"
service_name = "todobox"
supervisor_config = {_q(v.supervisor_config)}
health_url = {_q(base + "/health")}
check_url = {_q(base + "/users")}
log_files = [{_q(v.app_log)}, {_q(v.db_log)}]
git_remote = "origin"
git_branch = "master"

[database]
host = "127.0.0.1"
port = {v.db_port}
name = {_q(DB_NAME)}
user = {_q(DB_USER)}
password_env_file_key = "DATABASE_URL"  # the password lives only in the app's env file
password_prompt = false

[migration]
expected_head = {_q(FIX_REVISION)}
previous_revision = {_q(BUG_REVISION)}
table = "user"
column = "api_token"
index = "ix_user_api_token"
migration_file = {_q(MIGRATION_FILE)}

[backup]
directory = {_q(v.backup_dir)}
compression = "gzip"
"""
