"""Phase decision logic against a scripted fake session: fast, no servers (sandbox tests prove the rest)."""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from todobox_deploy.config import (
    AppConfig,
    BackupConfig,
    DatabaseConfig,
    DeployConfig,
    MigrationConfig,
    TargetConfig,
)
from todobox_deploy.core.context import DeployContext
from todobox_deploy.core.outcome import PhaseStatus
from todobox_deploy.core.streams import OutputSink, Stream
from todobox_deploy.db.schema import Rows, SchemaFacts
from todobox_deploy.engine.phases.db_check import conclude
from todobox_deploy.engine.phases.deploy_code import deploy_code
from todobox_deploy.engine.phases.service import stop_app
from todobox_deploy.engine.phases.spec import PhaseCall

CONFIG = DeployConfig(
    TargetConfig(host="prod"),
    AppConfig(path="/srv/app", service_manager="supervisor", health_url="http://127.0.0.1:5000/health"),
    DatabaseConfig(name="todobox", user="todobox"),
    MigrationConfig(expected_head="d1f2e3c4b5a6", index="ix_user_api_token"),
    BackupConfig(directory="/srv/backups"),
)


@dataclass
class Result:
    exit_status: int
    stdout: str = ""
    stderr: str = ""


@dataclass
class ScriptedSession:
    """Answers each command by the first script key found in its display text or command."""

    script: dict[str, Result]
    config: DeployConfig = CONFIG
    ran: list[str] = field(default_factory=list)

    def _answer(self, argv: Sequence[str] | str, display: str | None) -> Result:
        text = display or (argv if isinstance(argv, str) else " ".join(argv))
        self.ran.append(text)
        for key, result in self.script.items():
            if key in text:
                return result
        raise AssertionError(f"unscripted command: {text}")

    def capture(self, argv: Sequence[str] | str, *, display: str | None = None, **_: Any) -> Result:
        return self._answer(argv, display)

    def capture_steps(
        self, steps: Sequence[tuple[str, Sequence[str] | str]], *, stop_on_failure: bool = True, **_: Any
    ) -> list[Result]:
        """One round trip on a real host: each step answered in turn, ending at a failure if asked."""
        results: list[Result] = []
        for display, argv in steps:
            results.append(self.capture(argv, display=display))
            if stop_on_failure and results[-1].exit_status != 0:
                break
        return results

    def run(
        self, argv: Sequence[str] | str, sink: OutputSink, *, display: str | None = None, **_: Any
    ) -> int:
        start = re.search(r"(__todobox_[0-9a-f]+)-rc", argv if isinstance(argv, str) else "")
        if start:  # step 7's start script: the command's answer, and the health poll's when it polls
            mark, result = start.group(1), self._answer(argv, display)
            lines = [f"{mark}-rc {result.exit_status}"]
            if f"{mark}-health" in str(argv):
                lines.insert(0, f"{mark}-health {self._answer('', 'GET (health poll)').stdout}")
            sink("stdout", lines)
            return 0
        result = self._answer(argv, display)
        if result.stdout:
            sink("stdout", result.stdout.splitlines())
        return result.exit_status


def _call(
    session: ScriptedSession, context: DeployContext | None = None
) -> tuple[PhaseCall, list[tuple[Stream, str]]]:
    seen: list[tuple[Stream, str]] = []

    def sink(stream: Stream, lines: list[str]) -> None:
        seen.extend((stream, x) for x in lines)

    call = PhaseCall(session, sink, threading.Event(), context or DeployContext())  # type: ignore[arg-type]
    return call, seen


def test_deploy_refuses_local_changes_and_moves_nothing() -> None:
    # the status step exits 3 with the changes as its output (see deploy_code's batch)
    session = ScriptedSession({"rev-parse": Result(0, "a" * 40), "git status": Result(3, " M app/models.py")})
    call, _ = _call(session)
    outcome = deploy_code(call)
    assert outcome.status is PhaseStatus.FAILED and "local changes" in outcome.summary
    assert not any("merge" in c or "fetch" in c for c in session.ran)
    assert call.context.commit_before == "a" * 40  # the rollback target is known even so


def test_deploy_refuses_a_diverged_branch() -> None:
    session = ScriptedSession(
        {
            "rev-parse": Result(0, "a" * 40),
            "git status": Result(0),
            "git fetch": Result(0),
            "merge": Result(128),
        }
    )
    call, _ = _call(session)
    outcome = deploy_code(call)
    assert outcome.status is PhaseStatus.FAILED and "diverged" in outcome.summary
    assert call.context.commit_after is None


@dataclass
class Moving(ScriptedSession):
    """HEAD reads as each of ``heads`` in turn: before and after the fast-forward."""

    heads: list[str] = field(default_factory=list)

    def capture(self, argv: Sequence[str] | str, *, display: str | None = None, **_: Any) -> Result:
        if display and display.startswith("git rev-parse"):
            self.ran.append(display)
            return Result(0, self.heads.pop(0))
        return super().capture(argv, display=display)


def test_deploy_records_both_commits_for_the_context() -> None:
    script = {"git status": Result(0), "git fetch": Result(0), "merge": Result(0), "git log": Result(0)}
    script["git diff"] = Result(0, "migrations/versions/d1f2e3c4b5a6_fix.py")
    session = Moving(script, heads=["a" * 40, "a" * 40, "b" * 40])  # checked before the fetch, then again
    call, _ = _call(session)
    outcome = deploy_code(call)
    assert outcome.status is PhaseStatus.OK
    assert (call.context.commit_before, call.context.commit_after) == ("a" * 40, "b" * 40)
    assert outcome.fact("new migration files") == "d1f2e3c4b5a6_fix.py"
    assert "git merge --ff-only origin/master" in session.ran


def test_deploy_fast_forwards_to_the_preflights_commit_without_fetching() -> None:
    """The pre-flight fetched and named the target: the stop waits on no network, and the work tree moves
    to exactly that commit even if the remote branch moved on since."""
    target = "c" * 40
    script = {"git status": Result(0), "merge": Result(0), "git log": Result(0), "git diff": Result(0)}
    session = Moving(script, heads=["a" * 40, target])
    call, _ = _call(session, DeployContext(commit_target=target))
    outcome = deploy_code(call)
    assert outcome.status is PhaseStatus.OK, outcome.summary
    assert not any("fetch" in c for c in session.ran)
    assert f"git merge --ff-only {target[:12]}" in session.ran
    assert call.context.commit_after == target and outcome.fact("new migration files") == "(none)"


def test_stop_fails_when_the_app_still_answers() -> None:
    session = ScriptedSession(
        {"stop todobox": Result(0), "status todobox": Result(0), "GET": Result(0, "200")}
    )
    call, _ = _call(session)
    outcome = stop_app(call)
    assert outcome.status is PhaseStatus.FAILED and "still answers 200" in outcome.summary
    assert call.context.app_down_at is not None  # the clock started: the stop command did run


def _facts(column: bool, index: bool, versions: tuple[str, ...] = ("c682ef478e45",)) -> SchemaFacts:
    columns = Rows(("COLUMN_NAME",), (("api_token",),) if column else ())
    indexes = Rows(("Key_name", "Non_unique"), (("ix_user_api_token", "0"),) if index else ())
    return SchemaFacts(
        "todobox", "user", "api_token", "10.11", True, Rows(("Field",), ()), columns, indexes, True, versions
    )


HISTORY = ["c682ef478e45 -> d1f2e3c4b5a6 (head), fix", "<base> -> c682ef478e45, add"]


def test_db_check_conclusions() -> None:
    mig = CONFIG.migration
    needs = conclude(mig, _facts(False, False), 0, HISTORY)
    assert needs.status is PhaseStatus.OK and "upgrade to d1f2e3c4b5a6 needed" in needs.summary
    done = conclude(mig, _facts(True, True, ("d1f2e3c4b5a6",)), 0, HISTORY)
    assert "already migrated" in done.summary
    two = conclude(mig, _facts(True, True, ("a", "b")), 0, HISTORY)
    assert two.status is PhaseStatus.FAILED and "multiple heads applied" in two.summary
    broken = conclude(mig, _facts(False, False), 1, [])
    assert broken.status is PhaseStatus.FAILED and "not form a valid revision graph" in broken.summary
    old_code = conclude(mig, _facts(False, False), 0, ["<base> -> c682ef478e45, add"])
    assert old_code.status is PhaseStatus.WARNING and "deploy the new code first" in old_code.summary
