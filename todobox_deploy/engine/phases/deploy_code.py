"""Checklist step 2, "Deploy New Code": fast-forward the app's work tree on the host to the remote branch.

Refuses a work tree with local changes and a branch that cannot fast-forward; records the commit it
started from, which is what a rollback checks out (never a relative ``HEAD~1``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from todobox_deploy.core.outcome import PhaseOutcome, PhaseStatus
from todobox_deploy.core.streams import lines_of
from todobox_deploy.engine.flask_cli import app_command
from todobox_deploy.engine.phases.common import show_output
from todobox_deploy.engine.phases.spec import PhaseCall

if TYPE_CHECKING:
    from todobox_deploy.remote.batch import StepResult


_DIRTY = 3  # the status step's exit status for a work tree with local changes (they are its output)


def _tree_refusal(call: PhaseCall, steps: Sequence[StepResult]) -> PhaseOutcome | None:
    """The first two steps (HEAD, local changes): a refusal, or None with ``commit_before`` recorded."""
    app = call.session.config.app
    head = steps[0]
    if head.exit_status != 0:
        return PhaseOutcome(
            PhaseStatus.FAILED, f"{app.path} is not a git work tree on the host: {head.stderr.strip()}"
        )
    before = head.stdout.strip()
    if call.context.commit_before is None:
        call.establish(commit_before=before)
    status = steps[1]
    if status.exit_status == 0:
        return None
    call.sink("stderr", lines_of(status.stdout) or lines_of(status.stderr.strip()))
    what = "has local changes: commit or stash them on the host first"
    if status.exit_status != _DIRTY:
        what = f"cannot be read (git status exited {status.exit_status})"
    return PhaseOutcome(
        PhaseStatus.FAILED, f"the work tree in {app.path} {what}", (("commit before", before),)
    )


def deploy_code(call: PhaseCall) -> PhaseOutcome:
    """One round trip in the downtime: the work tree's state, the fast-forward and what it brought.

    The steps stop at the first failure: a work tree that is not a repository or has local changes is
    refused before anything moves, and nothing after a refused fast-forward runs. Without the pre-flight's
    commit (it was done by hand), the tree is checked, then the branch fetched, then the same steps run."""
    session, sink, cancel = call.session, call.sink, call.cancel
    app = session.config.app
    upstream = f"{app.git_remote}/{app.git_branch}"

    def git(*argv: str) -> str:
        return app_command(app, ["git", *argv])

    target = call.context.commit_target  # fetched by the pre-flight: the stop waits on no network
    goal = target or upstream
    shown = goal[:12] if target else goal
    clean = git("status", "--porcelain", "--untracked-files=no")
    steps = [
        ("git rev-parse --verify HEAD", git("rev-parse", "--verify", "HEAD")),
        (
            "git status --porcelain --untracked-files=no",
            f'out=$({clean}) || exit; [ -z "$out" ] || {{ printf "%s\\n" "$out"; exit {_DIRTY}; }}',
        ),
        (f"git merge --ff-only {shown}", git("merge", "--ff-only", goal)),
        ("git rev-parse HEAD", git("rev-parse", "HEAD")),
        # the merge set ORIG_HEAD to the commit it started from
        ("git log --oneline ORIG_HEAD..HEAD", git("log", "--oneline", "ORIG_HEAD..HEAD")),
        (
            "git diff --stat ORIG_HEAD HEAD -- migrations",
            git("diff", "--stat", "ORIG_HEAD", "HEAD", "--", "migrations"),
        ),
        (
            "git diff --name-only --diff-filter=A ORIG_HEAD HEAD -- migrations",
            git("diff", "--name-only", "--diff-filter=A", "ORIG_HEAD", "HEAD", "--", "migrations"),
        ),
    ]
    if target is None:
        refusal = _tree_refusal(call, session.capture_steps(steps[:2], cancel=cancel))
        if refusal is not None:
            return refusal
        fetch = f"git fetch {app.git_remote} {app.git_branch}"
        sink("info", [f"$ {fetch}"])
        if session.run(
            git("fetch", "--", app.git_remote, app.git_branch), sink, cancel=cancel, display=fetch
        ):
            return PhaseOutcome(
                PhaseStatus.FAILED,
                f"git fetch from {app.git_remote} failed",
                (("commit before", call.context.commit_before or "?"),),
            )
    if cancel.is_set():
        return PhaseOutcome(
            PhaseStatus.CANCELLED, "cancelled before the fast-forward; the work tree is unchanged"
        )
    results = session.capture_steps(steps, cancel=cancel)
    refusal = _tree_refusal(call, results)
    if refusal is not None:
        return refusal
    before = results[0].stdout.strip()
    show_output(sink, results[2], steps[2][0])
    if results[2].exit_status != 0:
        return PhaseOutcome(
            PhaseStatus.FAILED,
            f"{shown} cannot be fast-forwarded onto the deployed commit {before[:12]}: "
            "the branches diverged; resolve it on the host (nothing was changed)",
            (("commit before", before),),
        )
    after = results[3].stdout.strip() if len(results) > 3 and results[3].exit_status == 0 else ""
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
    for (title, _), result in zip(steps[4:6], results[4:6], strict=False):
        show_output(sink, result, title)
    added = results[6].stdout if len(results) > 6 and results[6].exit_status == 0 else ""
    facts = (
        ("commit before", before),
        ("commit after", after),
        ("new migration files", ", ".join(p.rsplit("/", 1)[-1] for p in lines_of(added)) or "(none)"),
    )
    return PhaseOutcome(PhaseStatus.OK, f"fast-forwarded {before[:12]} -> {after[:12]} ({upstream})", facts)
