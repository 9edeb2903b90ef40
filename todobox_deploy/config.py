"""The deploy config: a TOML file describing one target host, its app, database and backups.

Everything the wizard knows about a production host comes from here; nothing in the code assumes the
sandbox's layout. The DB password is never required in the file: it comes from an environment variable,
a key in the app's env file on the target, or a prompt.
"""

from __future__ import annotations

import tomllib
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

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
    checks: tuple[HttpCheck, ...] = ()  # post-deploy HTTP checks ([[app.checks]])
    check_commands: tuple[tuple[str, ...], ...] = ()  # post-deploy commands on the host that must exit 0
    orm_check: str | None = None  # Python run in the app's environment (the checklist's test 4)
    token_check: str | None = None  # Python exercising API-token generation without a lasting change


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
_PATH_KEYS = {"identity_file", "known_hosts", "ssh_config"}
_TUPLE_KEYS = {"start_command", "stop_command", "status_command", "log_files", "command"}
_TABLE_LISTS: dict[str, type] = {"checks": HttpCheck, "expect": ExpectedSchema}


def _form(where: str, value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ConfigError(f"{where} must be a table of strings")
    return tuple((str(k), v) for k, v in value.items())


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
        values = {k: (_form(f"{where} {k}", v) if k in ("form", "login_form") else v) for k, v in raw.items()}
        try:
            items.append(cls(**values))
        except TypeError:
            required = [f.name for f in fields(cls) if f.default is MISSING]
            raise ConfigError(f"{where} needs {', '.join(required)}") from None
        for f in fields(cls):
            v = getattr(items[-1], f.name)
            if isinstance(v, str) and ("\n" in v or "\x00" in v):
                raise ConfigError(f"{where} {f.name} must not contain a newline or NUL")
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
        if key in _PATH_KEYS:
            if not isinstance(value, str):
                raise ConfigError(f"[{name}] {key} must be a path string")
            path = Path(value).expanduser()
            values[key] = path if path.is_absolute() else (base / path)
        elif key in _TUPLE_KEYS:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"[{name}] {key} must be a list of strings")
            if any("\n" in v or "\r" in v or "\x00" in v for v in value):
                raise ConfigError(f"[{name}] {key} must not contain a newline, CR or NUL")
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
    _check_types(name, obj)
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
}


def _check_types(name: str, obj: Any) -> None:
    for f in fields(obj):
        value = getattr(obj, f.name)
        check = _KIND_CHECKS.get(str(f.type))
        if check and not check[1](value):
            raise ConfigError(f"[{name}] {f.name} must be {check[0]}, got {value!r}")
        if isinstance(value, str) and ("\n" in value or "\x00" in value):
            raise ConfigError(f"[{name}] {f.name} must not contain a newline or NUL")
    if name == "app":
        if obj.service_manager not in ("systemd", "supervisor", "command"):
            raise ConfigError("[app] service_manager must be one of systemd, supervisor, command")
        if obj.service_manager == "command" and not (obj.start_command and obj.stop_command):
            raise ConfigError("[app] service_manager = 'command' needs start_command and stop_command")
    if name == "app":
        for key in ("git_remote", "git_branch"):
            value = getattr(obj, key)
            if not value or value.startswith("-") or any(c.isspace() for c in value) or ".." in value:
                raise ConfigError(
                    f"[app] {key} {value!r} is not a usable git name (no leading '-', spaces or '..')"
                )
    if name == "backup" and obj.compression not in ("gzip", "none"):
        raise ConfigError("[backup] compression must be 'gzip' or 'none'")
    if name == "backup" and obj.keep < 1:
        raise ConfigError(f"[backup] keep must be at least 1, got {obj.keep}")
    if name == "notify" and obj.webhook_url and not obj.webhook_url.startswith(("http://", "https://")):
        raise ConfigError("[notify] webhook_url must be an http:// or https:// URL")
    if name == "migration" and obj.mode not in ("auto", "app", "standalone"):
        raise ConfigError("[migration] mode must be one of auto, app, standalone")
    if name == "migration" and obj.lock_wait_timeout < 1:
        raise ConfigError("[migration] lock_wait_timeout must be at least 1 second")
    if name == "target" and obj.port is not None and not 0 < obj.port < 65536:
        raise ConfigError(f"[target] port {obj.port} is out of range")
    if name == "target" and obj.host_key_fingerprint and not obj.host_key_fingerprint.startswith("SHA256:"):
        raise ConfigError(
            "[target] host_key_fingerprint must look like SHA256:... (as `ssh-keygen -lf` prints)"
        )


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
