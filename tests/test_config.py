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
        (("port = 2222", "port = 70000"), "[target] port must be a port number from 1 to 65535"),
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


CHECK = """
[[app.checks]]
name = "user list"
url = "http://127.0.0.1:5000/users"
"""


def _with(section: str, line: str, base: str = VALID) -> str:
    """VALID with ``line`` set in ``[section]``: replacing the key's line there, or added at the top."""
    header = f"[{section}]\n"
    if header not in base:
        base += f"\n{header}"
    head, _, rest = base.partition(header)
    body, sep, tail = rest.partition("\n[")
    key = line.split("=", 1)[0].strip()
    kept = [ln for ln in body.splitlines() if ln.split("=", 1)[0].strip() != key]
    return head + header + "\n".join([line, *kept]) + "\n" + sep + tail


def _refused(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    return str(info.value)


@pytest.mark.parametrize(
    ("section", "line", "named"),
    [
        # newlines, CRs and NULs anywhere: plain values, list items, tables inside arrays of tables
        ("app", 'service_name = "todo\\rbox"', "[app] service_name must not contain a newline, CR or NUL"),
        ("app", 'git_branch = "main\\u0000"', "[app] git_branch must not contain a newline, CR or NUL"),
        (
            "notify",
            'command = ["notify-send", "a\\nforged line"]',
            "[notify] command must not contain a newline",
        ),
        ("app", 'check_commands = [["true", "x\\ry"]]', "[app] check_commands must not contain a newline"),
        # paths on the host
        ("app", 'python = "venv/bin/python"', "[app] python must be a program name or an absolute path"),
        ("app", 'env_file = ".env"', "[app] env_file must be an absolute path on the host"),
        ("app", 'venv = "venv"', "[app] venv must be an absolute path on the host"),
        ("app", 'supervisor_config = "sup.conf"', "[app] supervisor_config must be an absolute path"),
        ("app", 'wsgi_file = "../other/wsgi.py"', "[app] wsgi_file must be a path inside the app directory"),
        (
            "app",
            'wsgi_file = "/srv/other/wsgi.py"',
            "[app] wsgi_file must be a path inside the app directory",
        ),
        ("migration", 'migration_file = "/etc/passwd"', "[migration] migration_file must be a path inside"),
        (
            "migration",
            'migrations_dir = "migrations/../../x"',
            "[migration] migrations_dir must be a path inside",
        ),
        ("migration", 'migrations_dir = ""', "[migration] migrations_dir must be a path inside"),
        ("backup", 'compression = "none"\ndirectory2 = 1', "[backup] has unknown key(s): directory2"),
        # host programs: a name or an absolute path, never relative or an option
        (
            "app",
            'supervisorctl = "venv/bin/supervisorctl"',
            "[app] supervisorctl must be a program name or an",
        ),
        ("app", 'systemctl = "-x"', "[app] systemctl must be a non-empty name without spaces"),
        ("app", 'git = "my git"', "[app] git must be a non-empty name without spaces"),
        ("database", 'dump = "bin/mysqldump"', "[database] dump must be a program name or an absolute path"),
        ("database", 'client = ""', "[database] client must be a non-empty name"),
        # counts, timeouts and ports
        ("target", "connect_timeout = 0", "[target] connect_timeout must be greater than 0, got 0"),
        ("target", "connect_timeout = -3.5", "[target] connect_timeout must be greater than 0"),
        ("target", "connect_timeout = nan", "[target] connect_timeout must be greater than 0"),
        ("backup", "keep = 0", "[backup] keep must be at least 1, got 0"),
        ("migration", "lock_wait_timeout = -1", "[migration] lock_wait_timeout must be at least 1 second"),
        ("database", "port = 0", "[database] port must be a port number from 1 to 65535, got 0"),
        ("database", "port = 65536", "[database] port must be a port number from 1 to 65535"),
        # URLs: http(s), a host, no whitespace or control characters, a valid port
        ("app", 'check_url = "ftp://127.0.0.1/users"', "[app] check_url must be an http:// or https:// URL"),
        (
            "app",
            'check_url = "http:///users"',
            "[app] check_url must be an http:// or https:// URL with a host",
        ),
        ("app", 'check_url = "127.0.0.1:5000/users"', "[app] check_url must be an http:// or https:// URL"),
        ("app", 'check_url = "http://127.0.0.1:99999/"', "[app] check_url has an invalid port"),
        ("app", 'check_url = "http://127.0.0.1:x/"', "[app] check_url has an invalid port"),
        ("app", 'health_url = "http://127.0.0.1/\\thealth"', "[app] health_url must be a URL without spaces"),
        (
            "notify",
            'webhook_url = "javascript:alert(1)"',
            "[notify] webhook_url must be an http:// or https://",
        ),
        # other names passed on as one argument
        ("target", 'host = "-oProxyCommand=x"', "[target] host must be a non-empty name"),
        ("app", 'service_name = "todo box"', "[app] service_name must be a non-empty name"),
        ("migration", 'previous_revision = ""', "[migration] previous_revision must be a non-empty name"),
        ("migration", 'table = ""', "[migration] table must be a MySQL name of 1 to 64 characters"),
        (
            "database",
            'password_env = "DB PASSWORD"',
            "[database] password_env must be an environment variable",
        ),
    ],
)
def test_every_refusal_names_section_and_key(section: str, line: str, named: str) -> None:
    assert named in _refused(_with(section, line))


def test_a_health_url_with_a_space_is_refused_at_load(tmp_path: Path) -> None:
    path = tmp_path / "deploy.toml"
    path.write_text(_with("app", 'health_url = "http://127.0.0.1:5000/he alth"'))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "[app] health_url must be a URL without spaces or control characters" in str(info.value)
    assert str(path) in str(info.value)


def test_a_newline_in_a_list_value_is_refused() -> None:
    forged = 'log_files = ["/var/log/todobox/app.log\\n2026-01-01 12:00:00 INFO all good"]'
    text = VALID.replace('log_files = ["/var/log/todobox/app.log"]', forged)
    assert "[app] log_files must not contain a newline, CR or NUL" in _refused(text)


def test_a_relative_app_path_is_refused() -> None:
    text = VALID.replace('path = "/srv/todobox"', 'path = "srv/todobox"')
    assert "[app] path must be an absolute path on the host (starting with /), got 'srv/todobox'" in _refused(
        text
    )
    assert "[app] path must be the app's own directory" in _refused(VALID.replace('"/srv/todobox"', '"/"', 1))


def test_a_migration_file_leaving_the_app_directory_is_refused() -> None:
    message = _refused(_with("migration", 'migration_file = "../../etc/passwd"'))
    assert "[migration] migration_file must be a path inside the app directory (relative, no '..')" in message
    assert "'../../etc/passwd'" in message
    ok = parse_config(_with("migration", 'migration_file = "migrations/versions/d1f2_fix.py"'))
    assert ok.migration.migration_file == "migrations/versions/d1f2_fix.py"


def test_zero_or_negative_counts_are_refused() -> None:
    assert "[backup] keep must be at least 1, got -5" in _refused(_with("backup", "keep = -5"))


def test_log_files_may_live_anywhere_but_must_be_absolute() -> None:
    cfg = parse_config(VALID.replace('"/var/log/todobox/app.log"', '"/opt/elsewhere/app.log"'))
    assert cfg.app.log_files == ("/opt/elsewhere/app.log",)
    message = _refused(VALID.replace('"/var/log/todobox/app.log"', '"logs/app.log"'))
    assert "[app] log_files must be an absolute path on the host" in message


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (
            ('url = "http://127.0.0.1:5000/users"', 'url = "http://127.0.0.1:5000/us ers"'),
            "#1 url must be a URL",
        ),
        (
            ('name = "user list"', 'name = "user list"\nlogin_url = "login"'),
            "#1 login_url must be an http://",
        ),
        (
            ('name = "user list"', 'name = "user list"\nmethod = "FETCH"'),
            "#1 method must be one of GET, POST",
        ),
        (
            ('name = "user list"', 'name = "user list"\nexpect_status = 42'),
            "#1 expect_status must be an HTTP",
        ),
        (
            ('name = "user list"', 'name = "user list"\nexpect_status = 600'),
            "#1 expect_status must be an HTTP",
        ),
        (('name = "user list"', 'name = "user list"\nform = {a = "b\\nc"}'), "#1 form must not contain a"),
        (
            ('name = "user list"', 'name = "user\\rlist"'),
            "[[app.checks]] #1 name must not contain a newline, CR",
        ),
    ],
)
def test_http_checks_are_validated(edit: tuple[str, str], named: str) -> None:
    text = VALID.replace("\n[database]", CHECK + "\n[database]", 1)
    assert parse_config(text).app.checks[0].url == "http://127.0.0.1:5000/users"
    old, new = edit
    assert old in text
    message = _refused(text.replace(old, new, 1))
    assert named in message and "[[app.checks]] #1" in message


def test_host_programs_default_to_their_names_and_take_absolute_paths() -> None:
    cfg = parse_config(VALID)
    assert (cfg.app.supervisorctl, cfg.app.systemctl, cfg.app.git) == ("supervisorctl", "systemctl", "git")
    cfg = parse_config(
        _with("app", 'supervisorctl = "/opt/venv/bin/supervisorctl"\ngit = "/usr/local/bin/git"')
    )
    assert cfg.app.supervisorctl == "/opt/venv/bin/supervisorctl" and cfg.app.git == "/usr/local/bin/git"
    methods = parse_config(VALID.replace("\n[database]", CHECK + 'method = "post"\n\n[database]', 1))
    assert methods.app.checks[0].method == "post"  # sent upper-cased
