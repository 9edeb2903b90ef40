"""Checklist step 2, "Deploy New Code": fast-forward the app's work tree on the host to the remote branch.

Refuses a work tree with local changes and a branch that cannot fast-forward; records the commit it
started from, which is what a rollback checks out (never a relative ``HEAD~1``).
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

from todobox_deploy.core.outcome import PhaseOutcome, PhaseStatus
from todobox_deploy.core.streams import OutputSink
from todobox_deploy.engine.flask_cli import app_command
from todobox_deploy.engine.phases.spec import PhaseCall

if TYPE_CHECKING:
    from todobox_deploy.remote.batch import StepResult


def _show(sink: OutputSink, title: str, result: StepResult) -> None:
    """A step of a batch in the log as if it had streamed: the command, then its output."""
    sink("info", [f"$ {title}"])
    if result.stdout:
        sink("stdout", result.stdout.splitlines())
    if result.stderr:
        sink("stderr", result.stderr.splitlines())


def deploy_code(call: PhaseCall) -> PhaseOutcome:
    """Two round trips in the downtime: the work tree's state, then the fast-forward and what it brought."""
    session, sink, cancel = call.session, call.sink, call.cancel
    app = session.config.app
    upstream = f"{app.git_remote}/{app.git_branch}"

    def git(*argv: str) -> tuple[str, str]:
        return shlex.join(["git", *argv]), app_command(app, ["git", *argv])

    head, status = session.capture_steps(
        [git("rev-parse", "--verify", "HEAD"), git("status", "--porcelain", "--untracked-files=no")],
        stop_on_failure=False,
    )
    before = head.stdout.strip()
    if head.exit_status != 0:
        return PhaseOutcome(
            PhaseStatus.FAILED, f"{app.path} is not a git work tree on the host: {head.stderr.strip()}"
        )
    if call.context.commit_before is None:
        call.establish(commit_before=before)
    dirty = status.stdout.rstrip()
    if status.exit_status != 0 or dirty:
        sink("stderr", dirty.splitlines() or [status.stderr.strip()])
        return PhaseOutcome(
            PhaseStatus.FAILED,
            f"the work tree in {app.path} has local changes: commit or stash them on the host first",
            (("commit before", before),),
        )
    target = call.context.commit_target  # fetched by the pre-flight: the stop waits on no network
    if target is None:
        fetch = f"git fetch {app.git_remote} {app.git_branch}"
        sink("info", [f"$ {fetch}"])
        command = app_command(app, ["git", "fetch", "--", app.git_remote, app.git_branch])
        if session.run(command, sink, cancel=cancel, display=fetch):
            return PhaseOutcome(
                PhaseStatus.FAILED, f"git fetch from {app.git_remote} failed", (("commit before", before),)
            )
    if cancel.is_set():
        return PhaseOutcome(PhaseStatus.CANCELLED, "cancelled after the fetch; the work tree is unchanged")
    goal = target or upstream
    shown = goal[:12] if target else goal
    titles = (
        f"git merge --ff-only {shown}",
        "git rev-parse HEAD",
        f"git log --oneline {before[:12]}..HEAD",
        "git diff --stat (migrations)",
        "git diff --name-only --diff-filter=A (migrations)",
    )
    steps = session.capture_steps(
        [
            (titles[0], git("merge", "--ff-only", goal)[1]),
            git("rev-parse", "HEAD"),
            git("log", "--oneline", f"{before}..HEAD"),
            git("diff", "--stat", before, "HEAD", "--", "migrations"),
            git("diff", "--name-only", "--diff-filter=A", before, "HEAD", "--", "migrations"),
        ]
    )
    _show(sink, titles[0], steps[0])
    if steps[0].exit_status != 0:
        return PhaseOutcome(
            PhaseStatus.FAILED,
            f"{shown} cannot be fast-forwarded onto the deployed commit {before[:12]}: "
            "the branches diverged; resolve it on the host (nothing was changed)",
            (("commit before", before),),
        )
    after = steps[1].stdout.strip() if len(steps) > 1 and steps[1].exit_status == 0 else ""
    if not after:
        return PhaseOutcome(
            PhaseStatus.FAILED,
            f"the fast-forward ran, but the new HEAD could not be read back: check {app.path} on the host",
            (("commit before", before),),
        )
    call.establish(commit_after=after)
    if after == before:
        return PhaseOutcome(
            PhaseStatus.OK,
            f"already at {upstream} ({after[:12]}): no new code",
            (("commit before", before), ("commit after", after)),
        )
    for title, step in zip(titles[2:4], steps[2:4], strict=False):
        _show(sink, title, step)
    added = steps[4].stdout if len(steps) > 4 and steps[4].exit_status == 0 else ""
    facts = (
        ("commit before", before),
        ("commit after", after),
        ("new migration files", ", ".join(p.rsplit("/", 1)[-1] for p in added.splitlines()) or "(none)"),
    )
    return PhaseOutcome(PhaseStatus.OK, f"fast-forwarded {before[:12]} -> {after[:12]} ({upstream})", facts)
