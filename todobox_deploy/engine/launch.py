"""Opening a deploy session: its own folder and journal, the host lock, and the offer to resume.

Front ends pass the questions that need a person as callbacks (take over a stale lock? resume?), so the
same opening serves the TUI, the plain front end and scripted runs.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from todobox_deploy import __version__
from todobox_deploy.checklist.data import CHECKLIST
from todobox_deploy.checklist.model import ChecklistNode
from todobox_deploy.engine.flow import DeployFlow
from todobox_deploy.engine.lock import HostLock, HostLocked, LockOwner
from todobox_deploy.engine.phases import PHASES, PhaseSpec
from todobox_deploy.engine.resume import JournalState, ResumePlan, find_unfinished, plan_resume, probe_host
from todobox_deploy.engine.session import DeploySession
from todobox_deploy.journal.journal import Journal


def sessions_root() -> Path:
    """Where session folders live: under the user's state directory."""
    import platformdirs

    return platformdirs.user_state_path("todobox-deploy") / "sessions"


def new_session_dir(root: Path, host: str) -> Path:
    """A folder no other session has: the time to the microsecond, the host and a random suffix."""
    root.mkdir(parents=True, exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "-._" else "_" for c in host)
    while True:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        path = root / f"{stamp}-{safe}-{secrets.token_hex(3)}"
        try:
            path.mkdir(mode=0o700)
            return path
        except FileExistsError:
            continue


@dataclass(frozen=True)
class Resumable:
    """An unfinished earlier session, what the host shows now, and the plan to go on."""

    previous: JournalState
    plan: ResumePlan


TakeOver = Callable[[HostLocked], bool]
"""Asked when another deploy holds the host's lock and its holder is not provably gone."""

OfferResume = Callable[[Resumable], bool]
"""Asked when the last session for this host did not end: resume from where the host proves, or not."""


def start_session(
    session: DeploySession,
    checklist: ChecklistNode,
    phases: Mapping[str, PhaseSpec],
    *,
    operator: str,
    root: Path,
    take_over: TakeOver | None = None,
    heartbeat_interval: float = 5.0,
    **header: object,
) -> DeployFlow:
    """A new session folder and journal (its header with ``header``), the host lock, and the flow.

    Raises HostLocked (journaled, and the session ended) when another session holds the host."""
    config = session.config
    host = config.target.host
    directory = new_session_dir(root, host)
    journal = Journal(directory / "journal.jsonl", operator=operator, host=host)
    journal.record(
        "session_started",
        config=str(config.source or ""),
        version=__version__,
        machine=os.uname().nodename,
        pid=os.getpid(),
        session_dir=str(directory),
        **header,
    )
    lock = HostLock(
        session.connection, LockOwner.here(operator, directory.name), heartbeat_interval=heartbeat_interval
    )
    try:
        previous_owner = acquire_lock(lock, take_over)
    except HostLocked as locked:
        journal.record("lock_refused", holder=str(locked))
        journal.record("session_ended", exit_code=4, reason=str(locked))
        raise
    journal.record(
        "lock_taken",
        take_over=previous_owner is not None,
        **({"previous": previous_owner.to_json()} if previous_owner else {}),
    )
    flow = DeployFlow(
        checklist,
        phases,
        session=session,
        operator=operator,
        host=host,
        journal=journal,
        transcript_dir=directory / "transcripts",
        lock=lock,
    )
    flow.session_dir = directory
    flow.journal_path = journal.path
    return flow


def open_flow(
    session: DeploySession,
    *,
    operator: str,
    root: Path | None = None,
    take_over: TakeOver | None = None,
    offer_resume: OfferResume | None = None,
    heartbeat_interval: float = 5.0,
) -> DeployFlow:
    """Journal a new session, lock the host (raises HostLocked), and resume an unfinished one if accepted."""
    config = session.config
    root = root or sessions_root()
    unfinished = find_unfinished(root, config.target.host, str(config.source or ""))
    flow = start_session(
        session,
        CHECKLIST,
        PHASES,
        operator=operator,
        root=root,
        take_over=take_over,
        heartbeat_interval=heartbeat_interval,
        **({"unfinished_session": str(unfinished.path)} if unfinished else {}),
    )
    if unfinished is not None:
        _offer(flow, unfinished, offer_resume)
    return flow


def acquire_lock(lock: HostLock, take_over: TakeOver | None) -> LockOwner | None:
    try:
        return lock.acquire()
    except HostLocked as locked:
        if take_over is None or not take_over(locked):
            raise
        return lock.acquire(take_over=True)


def resumable(session: DeploySession, previous: JournalState) -> Resumable:
    """Re-probe the host and plan a resume of ``previous``."""
    host = probe_host(session, previous.context)
    changing = [p.id for p in PHASES.values() if p.changes_host]
    plan = plan_resume(previous, host, CHECKLIST.phases(), changing, session.config.migration.expected_head)
    return Resumable(previous, plan)


def _offer(flow: DeployFlow, previous: JournalState, offer: OfferResume | None) -> None:
    assert flow.session is not None
    found = resumable(flow.session, previous)
    plan = found.plan
    accepted = offer is not None and offer(found)
    flow.record("resume_offered", from_session=str(previous.path), accepted=accepted, **plan.to_json())
    if not accepted:
        return
    flow.record("resumed", resumed_from=str(previous.path))
    carried = {p: previous.confirmed[p] for p in plan.carried}
    flow.restore(carried, previous.context, items=previous.items)
    if plan.resume_at is not None and plan.done_on_host is not None:
        flow.done_on_host(plan.resume_at, plan.done_on_host)
