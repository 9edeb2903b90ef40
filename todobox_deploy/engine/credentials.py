"""Find the DB password without it ever being written in the deploy config.

Order: a local environment variable, then a key in the app's env file on the target (read over SSH, never
logged; a ``DATABASE_URL``-style value has its password parsed out), then a prompt.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from todobox_deploy.config import AppConfig, DatabaseConfig
from todobox_deploy.core.envfile import EnvFileError, password_in_env_text


class CredentialsError(RuntimeError):
    """No password could be found; the message says which sources were tried."""


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
            try:
                password = password_in_env_text(read_remote_file(app.env_file), db.password_env_file_key)
            except EnvFileError as exc:
                raise CredentialsError(f"{app.env_file}: {exc}") from None
            if password is not None:
                return password
            tried.append(f"key {db.password_env_file_key} in {app.env_file} (absent)")
    if db.password_prompt and prompt is not None:
        return prompt(f"Password for MySQL user {db.user} on {db.host}:{db.port}/{db.name}: ")
    tried.append("prompt (disabled)" if not db.password_prompt else "prompt (no terminal)")
    raise CredentialsError("no database password: tried " + "; ".join(tried))
