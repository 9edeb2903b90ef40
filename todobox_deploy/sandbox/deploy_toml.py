"""Render the sandbox's deploy config (the schema of ``todobox_deploy.config``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from todobox_deploy.sandbox.appdb import BUG_REVISION, DB_NAME, DB_USER, FIX_REVISION

MIGRATION_FILE = "migrations/versions/d1f2e3c4b5a6_fix_api_token_column_ensure_api_token.py"

# Run by the app's python in the app dir (config.py reads .env). One line each: config values hold no
# newline. An exception exits 1 with its traceback; sys.exit(TEXT) exits 1 with TEXT.
_FIRST_USER = (
    "import sys; from app import create_app, db; from app.models import User; "
    "create_app().app_context().push(); "
    "u = db.session.execute(db.select(User).order_by(User.id).limit(1)).scalars().first(); "
)
# The checklist's "Test 4: Database query test": the app's model reads one user, api_token included.
ORM_CHECK = _FIRST_USER + (
    "print('ORM query ok: no users yet' if u is None else 'ORM query ok: user %s (%s), api_token %s' "
    "% (u.id, u.username, 'NULL' if u.api_token is None else u.api_token[:6] + '...'))"
)
# The checklist's "Test 5": the model's generate_api_token() for the first user, flushed, read back and
# looked up with User.check_api_token(), then rolled back (no lasting change).
TOKEN_CHECK = _FIRST_USER + (
    "u is not None or sys.exit('no user to issue an API token for'); uid = u.id; "
    "t = u.generate_api_token(); db.session.flush(); "
    "back = db.session.execute(db.select(User.api_token).where(User.id == uid)).scalar_one(); "
    "found = User.check_api_token(t); db.session.rollback(); "
    "(back == t and found is not None and found.id == uid) "
    "or sys.exit('the new API token did not read back'); "
    "print('API token check ok: user %s got a %d-character token, stored and found again; rolled back' "
    "% (uid, len(t)))"
)


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
    run_root: Path


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
run_root = {_q(v.run_root)}  # detached runs and the deploy lock of this sandbox's "host"

[app]
path = {_q(v.app_dir)}
python = {_q(v.python)}
env_file = {_q(v.env_file)}
flask_app = "wsgi.py"
wsgi_file = "wsgi.py"  # what supervisord's `gunicorn wsgi:app` loads
service_manager = "supervisor"
service_name = "todobox"
supervisor_config = {_q(v.supervisor_config)}
health_url = {_q(base + "/health")}
check_url = {_q(base + "/users")}
log_files = [{_q(v.app_log)}, {_q(v.db_log)}]
git_remote = "origin"
git_branch = "master"
orm_check = {_q(ORM_CHECK)}
token_check = {_q(TOKEN_CHECK)}

[[app.checks]]
name = "user list"
url = {_q(base + "/users")}
expect_status = 200

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

[[migration.expect]]
table = "user"
column = "api_token"
type = "varchar(64)"
index = "ix_user_api_token"
unique = true

[backup]
directory = {_q(v.backup_dir)}
compression = "gzip"
"""
