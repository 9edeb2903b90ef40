"""Checklist step 2, "Deploy New Code": fast-forward the app's work tree on the host to the remote branch.

Refuses a work tree with local changes and a branch that cannot fast-forward; records the commit it
started from, which is what a rollback checks out (never a relative ``HEAD~1``).
"""

from __future__ import annotations

import shlex

from todobox_deploy.core.outcome import PhaseOutcome, PhaseStatus
from todobox_deploy.engine.flask_cli import app_command
from todobox_deploy.engine.phases.spec import PhaseCall


def deploy_code(call: PhaseCall) -> PhaseOutcome:
    session, sink, cancel = call.session, call.sink, call.cancel
    app = session.config.app
    upstream = f"{app.git_remote}/{app.git_branch}"

    def capture(*argv: str) -> tuple[int, str, str]:
        result = session.capture(app_command(app, list(argv)), display=shlex.join(argv))
        return result.exit_status, result.stdout.rstrip(), result.stderr.strip()

    def run(title: str, *argv: str) -> int:
        sink("info", [f"$ {title}"])
        return session.run(app_command(app, list(argv)), sink, cancel=cancel, display=title)

    rc, before, err = capture("git", "rev-parse", "--verify", "HEAD")
    if rc != 0:
        return PhaseOutcome(PhaseStatus.FAILED, f"{app.path} is not a git work tree on the host: {err}")
    if call.context.commit_before is None:
        call.establish(commit_before=before)
    rc, dirty, err = capture("git", "status", "--porcelain", "--untracked-files=no")
    if rc != 0 or dirty:
        sink("stderr", dirty.splitlines() or [err])
        return PhaseOutcome(
            PhaseStatus.FAILED,
            f"the work tree in {app.path} has local changes: commit or stash them on the host first",
            (("commit before", before),),
        )
    target = call.context.commit_target  # fetched by the pre-flight: the stop waits on no network
    if target is None:
        fetch = f"git fetch {app.git_remote} {app.git_branch}"
        if run(fetch, "git", "fetch", "--", app.git_remote, app.git_branch):
            return PhaseOutcome(
                PhaseStatus.FAILED, f"git fetch from {app.git_remote} failed", (("commit before", before),)
            )
    if cancel.is_set():
        return PhaseOutcome(PhaseStatus.CANCELLED, "cancelled after the fetch; the work tree is unchanged")
    goal = target or upstream
    shown = goal[:12] if target else goal
    if run(f"git merge --ff-only {shown}", "git", "merge", "--ff-only", goal):
        return PhaseOutcome(
            PhaseStatus.FAILED,
            f"{shown} cannot be fast-forwarded onto the deployed commit {before[:12]}: "
            "the branches diverged; resolve it on the host (nothing was changed)",
            (("commit before", before),),
        )
    _, after, _ = capture("git", "rev-parse", "HEAD")
    call.establish(commit_after=after)
    if after == before:
        return PhaseOutcome(
            PhaseStatus.OK,
            f"already at {upstream} ({after[:12]}): no new code",
            (("commit before", before), ("commit after", after)),
        )
    run(f"git log --oneline {before[:12]}..{after[:12]}", "git", "log", "--oneline", f"{before}..{after}")
    run("git diff --stat (migrations)", "git", "diff", "--stat", before, after, "--", "migrations")
    _, added, _ = capture("git", "diff", "--name-only", "--diff-filter=A", before, after, "--", "migrations")
    facts = (
        ("commit before", before),
        ("commit after", after),
        ("new migration files", ", ".join(p.rsplit("/", 1)[-1] for p in added.splitlines()) or "(none)"),
    )
    return PhaseOutcome(PhaseStatus.OK, f"fast-forwarded {before[:12]} -> {after[:12]} ({upstream})", facts)
