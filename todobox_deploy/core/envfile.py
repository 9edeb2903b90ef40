"""KEY=VALUE env files (the app's settings on the host) and the password inside a database URL."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit


class EnvFileError(ValueError):
    """An env-file value that should hold a password does not."""


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
            raise EnvFileError("the URL in the env file has no password part")
        return unquote(password)
    return value


def password_in_env_text(text: str, key: str) -> str | None:
    """The password held by ``key`` in an env file's text (parsed out of a URL value), or None if absent."""
    values = parse_env_file(text)
    return password_from_value(values[key]) if key in values else None
