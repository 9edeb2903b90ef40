"""Find the DB password without it ever being written in the deploy config.

Order: a local environment variable, then a key in the app's env file on the target (read over SSH, never
logged; a ``DATABASE_URL``-style value has its password parsed out), then a prompt.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from urllib.parse import unquote, urlsplit

from todobox_deploy.config import AppConfig, DatabaseConfig


class CredentialsError(RuntimeError):
    """No password could be found; the message says which sources were tried."""


def parse_env_file(text: str) -> dict[str, str]:
    """Parse a KEY=VALUE env file (``export`` prefixes, quotes and comments allowed)."""
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("export "):
            line = line[7:].lstrip()
        key, sep, value = line.partition("=")
        if not sep or line.startswith("#"):
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def password_from_value(value: str) -> str:
    """A plain password, or the password part of a URL such as ``mysql+pymysql://u:p@h/db``."""
    if "://" in value:
        password = urlsplit(value).password
        if password is None:
            raise CredentialsError("the URL in the env file has no password part")
        return unquote(password)
    return value


def password_in_env_text(text: str, key: str) -> str | None:
    """The password held by ``key`` in an env file's text (parsed out of a URL value), or None if absent."""
    values = parse_env_file(text)
    return password_from_value(values[key]) if key in values else None


def resolve_password(
    db: DatabaseConfig,
    app: AppConfig,
    *,
    environ: Mapping[str, str],
    read_remote_file: Callable[[str], str] | None,
    prompt: Callable[[str], str] | None,
) -> str:
    """Return the DB password from the first source that has it."""
    tried: list[str] = []
    if db.password_env:
        if db.password_env in environ:
            return environ[db.password_env]
        tried.append(f"environment variable {db.password_env} (not set)")
    if db.password_env_file_key:
        if not app.env_file:
            tried.append("password_env_file_key is set but [app] env_file is not")
        elif read_remote_file is None:
            tried.append("the env file on the target (no connection)")
        else:
            password = password_in_env_text(read_remote_file(app.env_file), db.password_env_file_key)
            if password is not None:
                return password
            tried.append(f"key {db.password_env_file_key} in {app.env_file} (absent)")
    if db.password_prompt and prompt is not None:
        return prompt(f"Password for MySQL user {db.user} on {db.host}:{db.port}/{db.name}: ")
    tried.append("prompt (disabled)" if not db.password_prompt else "prompt (no terminal)")
    raise CredentialsError("no database password: tried " + "; ".join(tried))
