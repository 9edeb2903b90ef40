"""The sandbox's defaults, light enough for building the CLI's parser (the manager loads on use)."""

from __future__ import annotations

from pathlib import Path

DEFAULT_USERS = 200_000


def default_directory() -> Path:
    """``platformdirs.user_state_path("todobox-deploy") / "sandbox"``."""
    import platformdirs

    return Path(platformdirs.user_state_path("todobox-deploy")) / "sandbox"
