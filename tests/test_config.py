"""The deploy config: a valid file loads, and every wrong value is named with its section and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from todobox_deploy.config import ConfigError, load_config, parse_config

VALID = """
[target]
host = "prod-db-1"
port = 2222
user = "deploy"
identity_file = "keys/id_ed25519"

[app]
path = "/srv/todobox"
venv = "/srv/todobox/venv"
env_file = "/srv/todobox/.env"
flask_app = "wsgi.py"
service_manager = "supervisor"
service_name = "todobox"
log_files = ["/var/log/todobox/app.log"]

[database]
name = "todobox"
user = "todobox"
password_env_file_key = "DATABASE_URL"

[migration]
expected_head = "d1f2e3c4b5a6"
previous_revision = "c682ef478e45"
index = "ix_user_api_token"

[backup]
directory = "/var/backups/todobox"
"""


def test_valid_config_loads_with_defaults(tmp_path: Path) -> None:
    path = tmp_path / "deploy.toml"
    path.write_text(VALID)
    cfg = load_config(path)
    assert cfg.target.port == 2222
    assert cfg.target.identity_file == tmp_path / "keys/id_ed25519"  # relative to the config file
    assert cfg.app.log_files == ("/var/log/todobox/app.log",)
    assert cfg.database.port == 3306 and cfg.database.host == "127.0.0.1"
    assert cfg.migration.table == "user" and cfg.migration.column == "api_token"
    assert cfg.backup.compression == "gzip"
    assert cfg.source == path


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("port = 2222", 'port = "22"'), "[target] port must be an integer"),
        (("port = 2222", "port = 70000"), "[target] port 70000 is out of range"),
        (('user = "todobox"', 'user = "todobox"\npassword = "x"'), "[database] must not hold a password"),
        (('user = "todobox"', 'user = "todobox"\npasword = "x"'), "[database] has unknown key(s): pasword"),
        (('service_manager = "supervisor"', 'service_manager = "upstart"'), "service_manager must be one of"),
        (('service_manager = "supervisor"', 'service_manager = "command"'), "needs start_command"),
        (('expected_head = "d1f2e3c4b5a6"\n', ""), "[migration] is missing required key(s): expected_head"),
        (('[backup]\ndirectory = "/var/backups/todobox"', ""), "[backup] is missing or is not a table"),
        (
            ('log_files = ["/var/log/todobox/app.log"]', 'log_files = "/var/log/x"'),
            "must be a list of strings",
        ),
        (('path = "/srv/todobox"', 'path = "/srv/todo\\nbox"'), "must not contain a newline"),
    ],
)
def test_bad_values_are_named(edit: tuple[str, str], message: str) -> None:
    old, new = edit
    assert old in VALID
    with pytest.raises(ConfigError) as info:
        parse_config(VALID.replace(old, new, 1))
    assert message in str(info.value)


def test_missing_file_and_bad_toml_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[target\nhost=1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


def test_unknown_section_is_rejected() -> None:
    with pytest.raises(ConfigError, match="unknown section"):
        parse_config(VALID + "\n[extras]\nx = 1\n")


@pytest.mark.parametrize("branch", ["-x", "main branch", "a..b", ""])
def test_unusable_git_names_are_refused(branch: str) -> None:
    with pytest.raises(ConfigError, match="git_branch"):
        parse_config(VALID.replace("[app]\n", f'[app]\ngit_branch = "{branch}"\n', 1))
