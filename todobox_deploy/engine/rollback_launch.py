"""Opening a rollback session: the deploy it undoes (the newest deploy journal), its own journal, the lock.

A rollback session is journaled like a deploy (``session_started`` with ``kind: "rollback"`` and the deploy
session it rolls back) and runs the rollback checklist's phases over a context seeded with what that deploy
recorded: commit_before, the revisions, the verified backup and checksum_before.
"""

from __future__ import annotations

from pathlib import Path

from todobox_deploy.checklist.rollback import ROLLBACK_CHECKLIST
from todobox_deploy.core.context import DeployContext
from todobox_deploy.engine.flow import DeployFlow
from todobox_deploy.engine.launch import TakeOver, sessions_root, start_session
from todobox_deploy.engine.phases.rollback import ROLLBACK_PHASES
from todobox_deploy.engine.resume import JournalState, read_journal_state, sessions_of
from todobox_deploy.engine.session import DeploySession

ROLLBACK_KIND = "rollback"
_CARRIED = (
    "commit_before",
    "commit_target",
    "commit_after",
    "db_revision_before",
    "db_revision_after",
    "backup",
    "checksum_before",
    "db_state",
)


class NoDeploySession(RuntimeError):
    """No deploy session for this host and config recorded anything a rollback could go back to."""


def find_deploy_session(root: Path, host: str, config: str) -> JournalState | None:
    """The newest deploy (not rollback) session for this host and config that recorded a rollback target."""
    for path, entries in sessions_of(root, host, config):
        if entries[0].get("kind") == ROLLBACK_KIND:
            continue
        state = read_journal_state(path, entries)
        ctx = state.context
        if ctx.commit_before or ctx.backup or ctx.db_revision_before:
            return state
    return None


def find_unfinished_rollback(root: Path, host: str, config: str) -> JournalState | None:
    """The newest rollback session for this host and config, when its journal has no end."""
    for path, entries in sessions_of(root, host, config):
        if entries[0].get("kind") != ROLLBACK_KIND:
            continue
        state = read_journal_state(path, entries)
        return None if state.ended else state
    return None


def deploy_context(state: JournalState, unfinished: JournalState | None = None) -> DeployContext:
    """What the rollback starts from: the deploy's own findings, nothing of its run state.

    An unfinished earlier rollback's run token is carried over: its database run keeps its id, so this
    session re-attaches to it (or waits for it) instead of starting a second one."""
    ctx = state.context
    values = {name: getattr(ctx, name) for name in _CARRIED}
    pairs = [("deploy_session", str(state.path.parent))]
    token = dict((unfinished.context.rollback_plan or ()) if unfinished else ()).get("token")
    if unfinished is not None and token:
        pairs += [("token", token), ("unfinished_rollback", str(unfinished.path.parent))]
    return DeployContext(**values, rollback_plan=tuple(pairs))


def open_rollback_flow(
    session: DeploySession,
    *,
    operator: str,
    root: Path | None = None,
    take_over: TakeOver | None = None,
    heartbeat_interval: float = 5.0,
) -> DeployFlow:
    """Journal a new rollback session for the newest deploy and lock the host.

    Raises NoDeploySession when no deploy recorded anything to go back to, HostLocked when another session
    holds the host."""
    config = session.config
    root = root or sessions_root()
    host = config.target.host
    config_name = str(config.source or "")
    deploy = find_deploy_session(root, host, config_name)
    if deploy is None:
        raise NoDeploySession(
            f"no deploy session for {host} with config {config_name or '(none)'} under {root} recorded a "
            "commit, revision or backup to roll back to"
        )
    unfinished = find_unfinished_rollback(root, host, config_name)
    flow = start_session(
        session,
        ROLLBACK_CHECKLIST,
        ROLLBACK_PHASES,
        operator=operator,
        root=root,
        take_over=take_over,
        heartbeat_interval=heartbeat_interval,
        kind=ROLLBACK_KIND,
        deploy_session=str(deploy.path.parent),
        **({"unfinished_session": str(unfinished.path)} if unfinished else {}),
    )
    flow.restore({}, deploy_context(deploy, unfinished))  # journals the deploy's facts as this context
    return flow
