"""Stand-ins for the host and the operator's local clone, for the cockpit's Pilot and snapshot tests."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from git import Actor, Repo

from todobox_deploy.config import DeployConfig
from todobox_deploy.remote.connection import CommandResult

from .conftest import DEMO_CONFIG

SUMMARY = """# Migration fix summary

The production database was **stamped** at `c682ef478e45` but the column was never added.

| Revision | What |
|---|---|
| c682ef478e45 | adds `user.api_token` (never applied) |
| d1f2e3c4b5a6 | adds it where it is missing |

A hostile byte: \x1b[31mred\x1b[0m and a bidi override \u202egnp.exe\u202c.
"""
MIGRATION = "migrations/versions/d1f2e3c4b5a6_fix_api_token_column_ensure_api_token.py"
_ACTOR = Actor("todobox developer", "dev@todobox.invalid")


@dataclasses.dataclass(frozen=True)
class Clone:
    path: Path
    base: str  # the commit the host runs (HEAD before the deploy)
    fix: str  # the fix commit: the target


def _commit(repo: Repo, files: dict[str, str], message: str, when: str) -> str:
    root = Path(repo.working_tree_dir or ".")
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    repo.index.add(list(files))
    commit = repo.index.commit(message, author=_ACTOR, committer=_ACTOR, author_date=when, commit_date=when)
    return str(commit.hexsha)


def make_clone(path: Path) -> Clone:
    """A local clone with a base commit and the fix on top (fixed dates: the same shas every run)."""
    repo = Repo.init(path, initial_branch="master")
    with repo:
        base = _commit(
            repo,
            {"README.md": "# todobox\n", "migrations/env.py": "# env\n"},
            "Base app",
            "1767261600 +0000",
        )
        fix = _commit(
            repo,
            {"MIGRATION_FIX_SUMMARY.md": SUMMARY, MIGRATION: "revision = 'd1f2e3c4b5a6'\n"},
            "Fix missing user.api_token: idempotent migration d1f2e3c4b5a6",
            "1767348000 +0000",
        )
    return Clone(path, base, fix)


def with_local_repo(path: Path | None, config: DeployConfig = DEMO_CONFIG) -> DeployConfig:
    return dataclasses.replace(config, app=dataclasses.replace(config.app, local_repo=path))


class FakeHost:
    """Enough of a DeploySession for the TUI's host reads: ``capture`` answers from a script of
    (substring of the command -> result); everything else exits 128."""

    def __init__(self, config: DeployConfig, answers: Sequence[tuple[str, CommandResult]] = ()) -> None:
        self.config = config
        self.answers = list(answers)
        self.calls: list[str] = []
        self.on_reconnect: Any = None

    def capture(
        self,
        argv: Sequence[str] | str,
        *,
        stdin: bytes | None = None,
        timeout: float | None = 60.0,
        display: str | None = None,
        record: bool = True,
    ) -> CommandResult:
        text = argv if isinstance(argv, str) else " ".join(argv)
        self.calls.append(display or text)
        for needle, result in self.answers:
            if needle in text:
                return result
        return CommandResult(128, "", "fatal: not scripted")

    def take_commands(self) -> list[Any]:
        return []


def ok(stdout: str) -> CommandResult:
    return CommandResult(0, stdout, "")
