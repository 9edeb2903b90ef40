"""todobox configuration, read from the environment (and from the app's .env file when present)."""

import os
import secrets

BASE_DIR = os.path.dirname(os.path.abspath(__file__))


def load_env_file(path=None):
    """Load KEY=VALUE lines into os.environ without overriding what is already set."""
    path = path or os.environ.get("TODOBOX_ENV_FILE") or os.path.join(BASE_DIR, ".env")
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        key = key.removeprefix("export ").strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        os.environ.setdefault(key, value)


load_env_file()


class Config:
    SECRET_KEY = os.environ.get("SECRET_KEY") or secrets.token_hex(32)
    SQLALCHEMY_DATABASE_URI = os.environ.get("DATABASE_URL") or "sqlite:///" + os.path.join(BASE_DIR, "todobox.db")
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True, "pool_recycle": 280}
    SQLALCHEMY_TRACK_MODIFICATIONS = False
    # Where errors are logged; unset = stderr (gunicorn/supervisord put that in the app log).
    LOG_FILE = os.environ.get("TODOBOX_LOG_FILE")
    USERS_PER_PAGE = 20
    API_TOKEN_TTL = int(os.environ.get("API_TOKEN_TTL", "3600"))
