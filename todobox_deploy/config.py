"""The deploy config: a TOML file describing one target host, its app, database and backups.

Everything the wizard knows about a production host comes from here; nothing in the code assumes the
sandbox's layout. The DB password is never required in the file: it comes from an environment variable,
a key in the app's env file on the target, or a prompt.
"""

from __future__ import annotations

import math
import posixpath
import re
import tomllib
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path, PurePosixPath
from typing import Any, Literal
from urllib.parse import urlsplit

ServiceManager = Literal["systemd", "supervisor", "command"]
Compression = Literal["gzip", "none"]
MigrateMode = Literal["auto", "app", "standalone"]


class ConfigError(ValueError):
    """The deploy config is missing, unreadable or has a wrong value; the message says which key."""


@dataclass(frozen=True)
class TargetConfig:
    """How to reach the production host over SSH."""

    host: str
    port: int | None = None  # None: from ~/.ssh/config, else 22
    user: str | None = None  # None: from ~/.ssh/config, else the local user
    identity_file: Path | None = None
    known_hosts: Path | None = None  # extra known_hosts file, read-only (e.g. the sandbox's)
    ssh_config: Path | None = None  # None: ~/.ssh/config when it exists
    connect_timeout: float = 10.0
    host_key_fingerprint: str | None = None  # "SHA256:..." pins the target's key (non-interactive runs)
    run_root: str | None = None  # where detached runs keep their logs on the host


@dataclass(frozen=True)
class AppConfig:
    """The Flask app as it lives on the target."""

    path: str  # the git work tree on the target
    python: str = "python3"  # interpreter on the target (a venv's bin/python, typically)
    venv: str | None = None  # venv dir on the target; its bin/ goes first on PATH
    env_file: str | None = None  # KEY=VALUE file sourced for flask commands
    flask_app: str | None = None  # FLASK_APP
    service_manager: ServiceManager = "systemd"
    service_name: str = "todobox"
    supervisor_config: str | None = None  # supervisorctl -c FILE, for a non-system supervisord
    start_command: tuple[str, ...] = ()  # service_manager = "command"
    stop_command: tuple[str, ...] = ()
    status_command: tuple[str, ...] = ()
    health_url: str | None = None  # a cheap route; 200 when the app is up
    check_url: str | None = None  # a route that exercises the migrated column (the user list)
    log_files: tuple[str, ...] = ()
    git_remote: str = "origin"
    git_branch: str = "master"
    wsgi_file: str | None = None  # the module the process manager loads (e.g. "wsgi.py"), checked pre-stop
    supervisorctl: str = "supervisorctl"  # host programs: a name found on the SSH user's PATH, or a path
    systemctl: str = "systemctl"
    git: str = "git"
    checks: tuple[HttpCheck, ...] = ()  # post-deploy HTTP checks ([[app.checks]])
    check_commands: tuple[tuple[str, ...], ...] = ()  # post-deploy commands on the host that must exit 0
    orm_check: str | None = None  # Python run in the app's environment (the checklist's test 4)
    token_check: str | None = None  # Python exercising API-token generation without a lasting change
    local_repo: Path | None = None  # the operator's local clone: the docs and the commit check read it


@dataclass(frozen=True)
class HttpCheck:
    """One post-deploy HTTP check, optionally after a login that fetches the form's CSRF token first."""

    url: str
    name: str = ""
    method: str = "GET"
    form: tuple[tuple[str, str], ...] = ()
    expect_status: int = 200
    login_url: str | None = None
    login_form: tuple[tuple[str, str], ...] = ()
    csrf_field: str | None = None


@dataclass(frozen=True)
class DatabaseConfig:
    """The database as seen from the target host (PyMySQL reaches it through an SSH channel)."""

    name: str
    user: str
    host: str = "127.0.0.1"
    port: int = 3306
    password_env: str | None = None  # a local environment variable holding the password
    password_env_file_key: str | None = None  # a key in app.env_file on the target (a URL is parsed)
    password_prompt: bool = True  # ask the operator when nothing else gave a password
    client: str = "mysql"  # the command-line client on the target
    dump: str = "mysqldump"
    admin_user: str | None = None  # an optional privileged account for the rehearsal (scratch schema)
    admin_password_env: str | None = None
    admin_password_env_file_key: str | None = None
    admin_password_prompt: bool = False
    error_log: str | None = None  # MySQL error log on the target (relative: under the datadir); None: asked


@dataclass(frozen=True)
class MigrationConfig:
    """What the deploy must achieve, and where the schema evidence lives."""

    expected_head: str
    previous_revision: str | None = None  # the revision to downgrade to on rollback
    table: str = "user"
    column: str = "api_token"
    index: str | None = None
    migration_file: str | None = None  # expected file under migrations/versions
    migrations_dir: str = "migrations"  # relative to the app path
    expect: tuple[ExpectedSchema, ...] = ()  # [[migration.expect]]; default: table/column/index above
    mode: MigrateMode = "auto"  # "auto": the app's own `flask db` when the app imports, else standalone
    lock_wait_timeout: int = 30  # seconds the migration's DDL may wait on a metadata lock

    def expected(self) -> tuple[ExpectedSchema, ...]:
        """What the database must have after the deploy."""
        if self.expect:
            return self.expect
        return (ExpectedSchema(self.table, self.column, None, self.index, self.index is not None),)


@dataclass(frozen=True)
class ExpectedSchema:
    """One column the migration must leave in place, with its type and (unique) index if any."""

    table: str
    column: str
    type: str | None = None  # e.g. "varchar(64)", compared with INFORMATION_SCHEMA.COLUMNS.COLUMN_TYPE
    index: str | None = None
    unique: bool = False


@dataclass(frozen=True)
class BackupConfig:
    directory: str
    compression: Compression = "gzip"
    keep: int = 10


@dataclass(frozen=True)
class NotifyConfig:
    """How the team is told: a local command (the message on stdin) or a webhook (JSON POST)."""

    command: tuple[str, ...] = ()
    webhook_url: str | None = None


@dataclass(frozen=True)
class DeployConfig:
    target: TargetConfig
    app: AppConfig
    database: DatabaseConfig
    migration: MigrationConfig
    backup: BackupConfig
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    source: Path | None = field(default=None, compare=False)


_SECTIONS: dict[str, type] = {
    "target": TargetConfig,
    "app": AppConfig,
    "database": DatabaseConfig,
    "migration": MigrationConfig,
    "backup": BackupConfig,
    "notify": NotifyConfig,
}
_OPTIONAL_SECTIONS = {"notify"}
_PATH_KEYS = {"identity_file", "known_hosts", "ssh_config", "local_repo"}
_TUPLE_KEYS = {"start_command", "stop_command", "status_command", "log_files", "command"}
_TABLE_LISTS: dict[str, type] = {"checks": HttpCheck, "expect": ExpectedSchema}


def _form(where: str, value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ConfigError(f"{where} must be a table of strings")
    return tuple((str(k), v) for k, v in value.items())


def _no_line_breaks(where: str, value: Any) -> None:
    """No newline, CR or NUL in any string, however deep (they would forge lines in logs and journals)."""
    if isinstance(value, str):
        if any(c in value for c in "\n\r\x00"):
            raise ConfigError(f"{where} must not contain a newline, CR or NUL")
    elif isinstance(value, list | tuple):
        for item in value:
            _no_line_breaks(where, item)
    elif isinstance(value, dict):
        for key, item in value.items():
            _no_line_breaks(where, key)
            _no_line_breaks(where, item)


def _table_list(name: str, key: str, value: Any) -> tuple[Any, ...]:
    """An array of tables ([[app.checks]], [[migration.expect]]) as a tuple of frozen dataclasses."""
    cls = _TABLE_LISTS[key]
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ConfigError(f"[{name}] {key} must be an array of tables ([[{name}.{key}]])")
    known = {f.name for f in fields(cls)}
    items = []
    for i, raw in enumerate(value, 1):
        where = f"[[{name}.{key}]] #{i}"
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ConfigError(f"{where} has unknown key(s): {', '.join(unknown)}; known: {', '.join(known)}")
        for k, v in raw.items():
            _no_line_breaks(f"{where} {k}", v)
        values = {k: (_form(f"{where} {k}", v) if k in ("form", "login_form") else v) for k, v in raw.items()}
        try:
            item = cls(**values)
        except TypeError:
            required = [f.name for f in fields(cls) if f.default is MISSING]
            raise ConfigError(f"{where} needs {', '.join(required)}") from None
        _check_kinds(where, item)
        _TABLE_RULES[key](where, item)
        items.append(item)
    return tuple(items)


def _section(name: str, raw: Any, base: Path) -> Any:
    cls = _SECTIONS[name]
    if not isinstance(raw, dict):
        raise ConfigError(f"[{name}] is missing or is not a table")
    if name == "database" and "password" in raw:
        raise ConfigError(
            "[database] must not hold a password: use password_env, password_env_file_key or password_prompt"
        )
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ConfigError(f"[{name}] has unknown key(s): {', '.join(unknown)}; known: {', '.join(known)}")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in _TABLE_LISTS:
            _no_line_breaks(f"[{name}] {key}", value)
        if key in _PATH_KEYS:
            if not isinstance(value, str):
                raise ConfigError(f"[{name}] {key} must be a path string")
            path = Path(value).expanduser()
            values[key] = path if path.is_absolute() else (base / path)
        elif key in _TUPLE_KEYS:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"[{name}] {key} must be a list of strings")
            values[key] = tuple(value)
        elif key in _TABLE_LISTS:
            values[key] = _table_list(name, key, value)
        elif key == "check_commands":
            if not isinstance(value, list) or not all(
                isinstance(c, list) and c and all(isinstance(a, str) for a in c) for c in value
            ):
                raise ConfigError(f"[{name}] check_commands must be a list of argument lists")
            values[key] = tuple(tuple(c) for c in value)
        else:
            values[key] = value
    try:
        obj = cls(**values)
    except TypeError as exc:
        required = [k for k, f in known.items() if f.default is MISSING and f.default_factory is MISSING]
        missing = [k for k in required if k not in values]
        raise ConfigError(f"[{name}] is missing required key(s): {', '.join(missing) or exc}") from None
    _check_kinds(f"[{name}]", obj)
    _RULES[name](f"[{name}]", obj)
    return obj


_KIND_CHECKS: dict[str, tuple[str, Any]] = {
    "int": ("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    "int | None": ("an integer", lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool))),
    "float": ("a number", lambda v: isinstance(v, int | float) and not isinstance(v, bool)),
    "bool": ("true or false", lambda v: isinstance(v, bool)),
    "str": ("a string", lambda v: isinstance(v, str)),
    "str | None": ("a string", lambda v: v is None or isinstance(v, str)),
    "ServiceManager": ("a string", lambda v: isinstance(v, str)),
    "Compression": ("a string", lambda v: isinstance(v, str)),
    "MigrateMode": ("a string", lambda v: isinstance(v, str)),
}


def _check_kinds(where: str, obj: Any) -> None:
    for f in fields(obj):
        value = getattr(obj, f.name)
        check = _KIND_CHECKS.get(str(f.type))
        if check and not check[1](value):
            raise ConfigError(f"{where} {f.name} must be {check[0]}, got {value!r}")


# -- the rules, one function per section (each error names the section and the key) ---------------


def _fail(where: str, key: str, rule: str, value: object) -> ConfigError:
    return ConfigError(f"{where} {key} {rule}, got {value!r}")


def _word(where: str, key: str, value: str | None) -> None:
    """A name passed as one argument: not empty, no whitespace, no leading '-' (it would be an option)."""
    if value is not None and (not value or value.startswith("-") or any(c.isspace() for c in value)):
        raise _fail(where, key, "must be a non-empty name without spaces or a leading '-'", value)


def _program(where: str, key: str, value: str) -> None:
    """A program on the host: a name looked up on the SSH user's PATH, or an absolute path."""
    _word(where, key, value)
    if "/" in value and not value.startswith("/"):
        raise _fail(where, key, "must be a program name or an absolute path on the host", value)


def _absolute(where: str, key: str, value: str | None) -> None:
    if value is not None and not value.startswith("/"):
        raise _fail(where, key, "must be an absolute path on the host (starting with /)", value)


def _inside_app(where: str, key: str, value: str | None) -> None:
    """A path relative to [app] path that stays inside it: not absolute, no '..' component."""
    if value is None:
        return
    if not value or value.startswith(("/", "~")) or ".." in PurePosixPath(value).parts:
        raise _fail(where, key, "must be a path inside the app directory (relative, no '..')", value)


def _positive(where: str, key: str, value: float | None) -> None:
    if value is not None and not (0 < value < math.inf):
        raise _fail(where, key, "must be greater than 0", value)


def _port(where: str, key: str, value: int | None) -> None:
    if value is not None and not 0 < value < 65536:
        raise _fail(where, key, "must be a port number from 1 to 65535", value)


def _url(where: str, key: str, value: str | None) -> None:
    """An http(s) URL with a host, no whitespace or control characters, a valid port."""
    if value is None:
        return
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in value):
        raise _fail(where, key, "must be a URL without spaces or control characters", value)
    try:
        parts = urlsplit(value)
        scheme, host = parts.scheme, parts.hostname
    except ValueError:  # e.g. an unclosed [IPv6 bracket
        scheme, host = "", None
    if scheme not in ("http", "https") or not host:
        raise _fail(where, key, "must be an http:// or https:// URL with a host", value)
    try:
        port_ok = parts.port != 0
    except ValueError:  # not a number, or out of range
        port_ok = False
    if not port_ok:
        raise _fail(where, key, "has an invalid port", value)


def _identifier(where: str, key: str, value: str | None) -> None:
    if value is not None and not 0 < len(value) <= 64:
        raise _fail(where, key, "must be a MySQL name of 1 to 64 characters", value)


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")


def _env_name(where: str, key: str, value: str | None) -> None:
    if value is not None and not _ENV_NAME.fullmatch(value):
        raise _fail(where, key, "must be an environment variable name", value)


def _target_rules(where: str, t: TargetConfig) -> None:
    _word(where, "host", t.host)
    _port(where, "port", t.port)
    _word(where, "user", t.user)
    _positive(where, "connect_timeout", t.connect_timeout)
    if t.host_key_fingerprint is not None and not t.host_key_fingerprint.startswith("SHA256:"):
        raise _fail(
            where,
            "host_key_fingerprint",
            "must look like SHA256:... (as `ssh-keygen -lf` prints)",
            t.host_key_fingerprint,
        )
    if t.run_root is not None and not t.run_root.startswith(("/", "~/")):
        raise _fail(where, "run_root", "must be an absolute path or start with ~/", t.run_root)


def _app_rules(where: str, a: AppConfig) -> None:
    _absolute(where, "path", a.path)
    if posixpath.normpath(a.path) == "/":
        raise _fail(where, "path", "must be the app's own directory, not /", a.path)
    for key in ("python", "supervisorctl", "systemctl", "git"):
        _program(where, key, getattr(a, key))
    for key in ("venv", "env_file", "supervisor_config"):
        _absolute(where, key, getattr(a, key))
    if a.service_manager not in ("systemd", "supervisor", "command"):
        raise _fail(
            where, "service_manager", "must be one of systemd, supervisor, command", a.service_manager
        )
    if a.service_manager == "command" and not (a.start_command and a.stop_command):
        raise ConfigError(f"{where} service_manager = 'command' needs start_command and stop_command")
    _word(where, "service_name", a.service_name)
    for key in ("start_command", "stop_command", "status_command"):
        if getattr(a, key) and not getattr(a, key)[0]:
            raise _fail(where, key, "must start with a program", getattr(a, key))
    _url(where, "health_url", a.health_url)
    _url(where, "check_url", a.check_url)
    for log in a.log_files:
        _absolute(where, "log_files", log)
    for key in ("git_remote", "git_branch"):
        value = getattr(a, key)
        if not value or value.startswith("-") or any(c.isspace() for c in value) or ".." in value:
            raise ConfigError(
                f"{where} {key} {value!r} is not a usable git name (no leading '-', spaces or '..')"
            )
    _inside_app(where, "wsgi_file", a.wsgi_file)


def _check_rules(where: str, c: HttpCheck) -> None:
    _url(where, "url", c.url)
    _url(where, "login_url", c.login_url)
    if c.method.upper() not in _METHODS:
        raise _fail(where, "method", f"must be one of {', '.join(_METHODS)}", c.method)
    if not 100 <= c.expect_status <= 599:
        raise _fail(where, "expect_status", "must be an HTTP status from 100 to 599", c.expect_status)


def _expect_rules(where: str, e: ExpectedSchema) -> None:
    _identifier(where, "table", e.table)
    _identifier(where, "column", e.column)
    _identifier(where, "index", e.index)


def _database_rules(where: str, d: DatabaseConfig) -> None:
    _identifier(where, "name", d.name)
    if not d.user:
        raise _fail(where, "user", "must not be empty", d.user)
    _word(where, "host", d.host)
    _port(where, "port", d.port)
    _env_name(where, "password_env", d.password_env)
    _env_name(where, "admin_password_env", d.admin_password_env)
    _program(where, "client", d.client)
    _program(where, "dump", d.dump)
    if d.admin_user is not None and not d.admin_user:
        raise _fail(where, "admin_user", "must not be empty when set", d.admin_user)


def _migration_rules(where: str, m: MigrationConfig) -> None:
    _word(where, "expected_head", m.expected_head)
    _word(where, "previous_revision", m.previous_revision)
    _identifier(where, "table", m.table)
    _identifier(where, "column", m.column)
    _identifier(where, "index", m.index)
    _inside_app(where, "migration_file", m.migration_file)
    _inside_app(where, "migrations_dir", m.migrations_dir)
    if m.mode not in ("auto", "app", "standalone"):
        raise _fail(where, "mode", "must be one of auto, app, standalone", m.mode)
    if m.lock_wait_timeout < 1:
        raise _fail(where, "lock_wait_timeout", "must be at least 1 second", m.lock_wait_timeout)


def _backup_rules(where: str, b: BackupConfig) -> None:
    _absolute(where, "directory", b.directory)
    if b.compression not in ("gzip", "none"):
        raise _fail(where, "compression", "must be 'gzip' or 'none'", b.compression)
    if b.keep < 1:
        raise _fail(where, "keep", "must be at least 1", b.keep)


def _notify_rules(where: str, n: NotifyConfig) -> None:
    _url(where, "webhook_url", n.webhook_url)
    if n.command and not n.command[0]:
        raise _fail(where, "command", "must start with a program", n.command)


_RULES: dict[str, Callable[[str, Any], None]] = {
    "target": _target_rules,
    "app": _app_rules,
    "database": _database_rules,
    "migration": _migration_rules,
    "backup": _backup_rules,
    "notify": _notify_rules,
}
_TABLE_RULES: dict[str, Callable[[str, Any], None]] = {"checks": _check_rules, "expect": _expect_rules}


def parse_config(text: str, base: Path | None = None, source: Path | None = None) -> DeployConfig:
    """Parse TOML text into a DeployConfig; relative paths resolve against ``base``."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source or 'config'}: not valid TOML: {exc}") from None
    base = base or Path.cwd()
    unknown = sorted(set(raw) - set(_SECTIONS))
    if unknown:
        raise ConfigError(f"unknown section(s): {', '.join(unknown)}")
    parts = {
        name: _section(name, raw.get(name, {} if name in _OPTIONAL_SECTIONS else None), base)
        for name in _SECTIONS
    }
    return DeployConfig(**parts, source=source)


def load_config(path: str | Path) -> DeployConfig:
    """Read and validate a deploy config file."""
    p = Path(path).expanduser()
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such config file (create one; see the README's config section)") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read: {exc.strerror}") from None
    try:
        return parse_config(text, base=p.resolve().parent, source=p)
    except ConfigError as exc:
        raise ConfigError(f"{p}: {exc}") from None
