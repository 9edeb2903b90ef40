"""The sandbox's git state: a bare ``origin`` whose master has the pre-fix and the fix commits,
and the deployed app dir, a clone checked out at the pre-fix commit."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from todobox_deploy.sandbox.procs import SandboxError

APP_SOURCE = Path(__file__).with_name("todobox_app")
BRANCH = "master"
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc")
_IDENTITY = (("user.name", "todobox developer"), ("user.email", "dev@todobox.invalid"))


@dataclass(frozen=True)
class GitState:
    origin: Path
    app_dir: Path
    prefix_commit: str
    fix_commit: str


def git(*args: str, cwd: Path | None = None) -> str:
    """Run git and return its stripped stdout; raise SandboxError with stderr on failure."""
    exe = shutil.which("git")
    if not exe:
        raise SandboxError("git not found: install git (apt-get install -y git)")
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1", "LC_ALL": "C"}
    done = subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SandboxError(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def _set_identity(repo: Path) -> None:
    for key, value in _IDENTITY:
        git("config", key, value, cwd=repo)


def build_repos(origin: Path, app_dir: Path) -> GitState:
    """(Re)create ``origin`` (bare) and ``app_dir`` (a clone at the pre-fix commit, master behind by one)."""
    for path in (origin, app_dir):
        if path.exists():
            shutil.rmtree(path)
    origin.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="todobox-src-") as tmp:
        work = Path(tmp) / "todobox"
        shutil.copytree(APP_SOURCE / "base", work, ignore=_IGNORE)
        git("-c", f"init.defaultBranch={BRANCH}", "init", "-q", cwd=work)
        _set_identity(work)
        git("add", "-A", cwd=work)
        git("commit", "-q", "-m", "Drop token_created_at; api_token in the User model", cwd=work)
        prefix = git("rev-parse", "HEAD", cwd=work)
        shutil.copytree(APP_SOURCE / "fix", work, ignore=_IGNORE, dirs_exist_ok=True)
        git("add", "-A", cwd=work)
        git(
            "commit",
            "-q",
            "-m",
            "Fix missing user.api_token: idempotent migration d1f2e3c4b5a6\n\n"
            "Adds the column and the unique index ix_user_api_token only where they are missing.",
            cwd=work,
        )
        fix = git("rev-parse", "HEAD", cwd=work)
        git("-c", f"init.defaultBranch={BRANCH}", "init", "-q", "--bare", str(origin))
        git("push", "-q", str(origin), f"{BRANCH}:{BRANCH}", cwd=work)
    git("clone", "-q", "--branch", BRANCH, str(origin), str(app_dir))
    _set_identity(app_dir)
    git("reset", "-q", "--hard", prefix, cwd=app_dir)
    return GitState(origin=origin, app_dir=app_dir, prefix_commit=prefix, fix_commit=fix)


def reset_repos(state: GitState) -> None:
    """Put origin/master back at the fix and the app dir back at the pre-fix commit (cheap)."""
    git("update-ref", f"refs/heads/{BRANCH}", state.fix_commit, cwd=state.origin)
    git("fetch", "-q", "--prune", "origin", cwd=state.app_dir)
    git("checkout", "-q", "-f", "-B", BRANCH, state.prefix_commit, cwd=state.app_dir)
    git("branch", "-q", f"--set-upstream-to=origin/{BRANCH}", BRANCH, cwd=state.app_dir)
    git("clean", "-q", "-fd", cwd=state.app_dir)  # keeps ignored files: .env, __pycache__
