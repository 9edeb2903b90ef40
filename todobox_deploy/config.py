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


@dataclass(frozen=True)
class MigrationConfig:
    """What the deploy must achieve, and where the schema evidence lives."""

    expected_head: str
    previous_revision: str | None = None  # the revision to downgrade to on rollback
    table: str = "user"
    column: str = "api_token"
    index: str | None = None
    migration_file: str | None = None  # expected file under migrations/versions


@dataclass(frozen=True)
class BackupConfig:
    directory: str
    compression: Compression = "gzip"
    keep: int = 10


@dataclass(frozen=True)
class DeployConfig:
    target: TargetConfig
    app: AppConfig
    database: DatabaseConfig
    migration: MigrationConfig
    backup: BackupConfig
    source: Path | None = field(default=None, compare=False)


_SECTIONS: dict[str, type] = {
    "target": TargetConfig,
    "app": AppConfig,
    "database": DatabaseConfig,
    "migration": MigrationConfig,
    "backup": BackupConfig,
}
_PATH_KEYS = {"identity_file", "known_hosts", "ssh_config"}
_TUPLE_KEYS = {"start_command", "stop_command", "status_command", "log_files"}


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
            values[key] = tuple(value)
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
    parts = {name: _section(name, raw.get(name), base) for name in _SECTIONS}
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
