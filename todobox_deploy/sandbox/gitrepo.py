"""The sandbox's git state: a bare ``origin`` and the deployed app dir, a clone of it.

Three code lines are built, each a pre-fix commit and a fix commit on top of it (see ``CODE_LINES``);
a sandbox state picks one: origin's master points at that line's fix commit and the clone's master at
its pre-fix commit (or at the fix, as after a deploy). The lines' commits are also kept in origin under
``refs/sandbox/LINE/{prefix,fix}`` (not fetched by a clone: only branches are) so that switching is cheap.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from todobox_deploy.sandbox.procs import SandboxError

APP_SOURCE = Path(__file__).with_name("todobox_app")
BRANCH = "master"
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc")
_IDENTITY = (("user.name", "todobox developer"), ("user.email", "dev@todobox.invalid"))
_FIX_MESSAGE = (
    "Fix missing user.api_token: idempotent migration d1f2e3c4b5a6\n\n"
    "Adds the column and the unique index ix_user_api_token only where they are missing."
)

# line -> (what the pre-fix commit adds to the base commit, what the fix commit adds besides the fix)
CODE_LINES: dict[str, tuple[str | None, str | None]] = {
    "base": (None, None),  # base commit; base + d1f2e3c4b5a6 and the two analysis documents
    "startup-query": ("startup-query.patch", None),  # create_app queries User at import, in both commits
    "renamed-wsgi": (None, "renamed-wsgi.patch"),  # the fix commit also renames wsgi.py to serve.py
}
_PATCH_MESSAGES = {
    "startup-query.patch": "Fail fast at boot: query the first user in create_app",
    "renamed-wsgi.patch": "; rename the WSGI entry point wsgi.py to serve.py",
}


@dataclass(frozen=True)
class GitState:
    """One code line as deployed: origin's master at ``fix_commit``, the clone at ``prefix_commit``."""

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


def _commit(work: Path, message: str) -> str:
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", message, cwd=work)
    return git("rev-parse", "HEAD", cwd=work)


def _apply(work: Path, patch: str) -> None:
    git("apply", "--index", str(APP_SOURCE / "variants" / patch), cwd=work)


def _build_line(work: Path, base: str, prefix_patch: str | None, fix_patch: str | None) -> tuple[str, str]:
    """Commit one line on top of ``base`` in ``work``; returns (pre-fix commit, fix commit)."""
    git("checkout", "-q", "-f", "--detach", base, cwd=work)
    prefix = base
    if prefix_patch:
        _apply(work, prefix_patch)
        prefix = _commit(work, _PATCH_MESSAGES[prefix_patch])
    shutil.copytree(APP_SOURCE / "fix", work, ignore=_IGNORE, dirs_exist_ok=True)
    message = _FIX_MESSAGE
    if fix_patch:
        _apply(work, fix_patch)
        title, _, body = _FIX_MESSAGE.partition("\n")
        message = title + _PATCH_MESSAGES[fix_patch] + "\n" + body
    return prefix, _commit(work, message)


def build_repos(origin: Path, app_dir: Path) -> dict[str, GitState]:
    """(Re)create ``origin`` (bare, every line) and ``app_dir`` (a clone at the base line's pre-fix commit).

    Returns each code line's commits; origin's master is the base line's fix commit.
    """
    for path in (origin, app_dir):
        if path.exists():
            shutil.rmtree(path)
    origin.parent.mkdir(parents=True, exist_ok=True)
    lines: dict[str, tuple[str, str]] = {}
    with tempfile.TemporaryDirectory(prefix="todobox-src-") as tmp:
        work = Path(tmp) / "todobox"
        shutil.copytree(APP_SOURCE / "base", work, ignore=_IGNORE)
        git("-c", f"init.defaultBranch={BRANCH}", "init", "-q", cwd=work)
        _set_identity(work)
        base = _commit(work, "Drop token_created_at; api_token in the User model")
        for line, (prefix_patch, fix_patch) in CODE_LINES.items():
            lines[line] = _build_line(work, base, prefix_patch, fix_patch)
        git("-c", f"init.defaultBranch={BRANCH}", "init", "-q", "--bare", str(origin))
        refspecs = [f"{lines['base'][1]}:refs/heads/{BRANCH}"]
        for line, (prefix, fix) in lines.items():
            refspecs += [f"{prefix}:refs/sandbox/{line}/prefix", f"{fix}:refs/sandbox/{line}/fix"]
        git("push", "-q", str(origin), *refspecs, cwd=work)
    git("clone", "-q", "--branch", BRANCH, str(origin), str(app_dir))
    _set_identity(app_dir)
    git("reset", "-q", "--hard", lines["base"][0], cwd=app_dir)
    return {line: GitState(origin, app_dir, prefix, fix) for line, (prefix, fix) in lines.items()}


def lines_to_json(lines: dict[str, GitState]) -> dict[str, Any]:
    """The commits of every line, for the sandbox's state file."""
    return {line: {"prefix_commit": s.prefix_commit, "fix_commit": s.fix_commit} for line, s in lines.items()}


def reset_repos(state: GitState, at_fix: bool = False) -> None:
    """Put origin/master at the line's fix and the app dir at its pre-fix commit (or the fix) (cheap)."""
    git("update-ref", f"refs/heads/{BRANCH}", state.fix_commit, cwd=state.origin)
    git("fetch", "-q", "--prune", "origin", cwd=state.app_dir)
    target = state.fix_commit if at_fix else state.prefix_commit
    git("checkout", "-q", "-f", "-B", BRANCH, target, cwd=state.app_dir)
    git("branch", "-q", f"--set-upstream-to=origin/{BRANCH}", BRANCH, cwd=state.app_dir)
    git("clean", "-q", "-fd", cwd=state.app_dir)  # keeps ignored files: .env, __pycache__
