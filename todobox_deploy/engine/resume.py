"""Resume after a crash: what an unfinished session's journal says, what the host shows, where to go on.

The journal is never trusted alone. A phase that changed the host (stop, deploy, migrate, start) is
carried over only when the host still shows its effect; the first phase that cannot be proven is where
the new session resumes. When the host already shows that phase done (e.g. the app is down after a
crash right after the stop), it is not run again: the operator confirms the host's evidence instead.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from todobox_deploy.checklist.progress import Confirmation
from todobox_deploy.core.context import DeployContext
from todobox_deploy.core.outcome import Fact, PhaseOutcome, PhaseStatus

if TYPE_CHECKING:
    from todobox_deploy.engine.session import DeploySession


@dataclass(frozen=True)
class JournalState:
    """What an earlier session's journal says."""

    path: Path
    operator: str
    started: str
    ended: bool
    confirmed: dict[str, tuple[PhaseOutcome, Confirmation]]  # accepted phases, in order
    finished: dict[str, PhaseOutcome]  # last outcome of every finished phase
    running: str | None  # started, never finished: the session died during it
    context: DeployContext
    items: dict[str, Confirmation] = field(default_factory=dict)  # manual item -> who confirmed it


def _outcome(entry: dict[str, Any]) -> PhaseOutcome:
    facts = entry.get("facts") or {}
    status = PhaseStatus(entry.get("status") or "skipped")
    pairs = tuple((str(k), str(v)) for k, v in facts.items()) if isinstance(facts, dict) else ()
    raw = entry.get("evidence") or []
    evidence = tuple(f for f in (Fact.from_json(d) for d in raw if isinstance(d, dict)) if f is not None)
    return PhaseOutcome(status, str(entry.get("summary") or ""), pairs, evidence=evidence)


def _phase_confirmation(e: dict[str, Any], phase: str, outcome: PhaseOutcome) -> Confirmation:
    """A journaled confirmation (``phase_confirmed``, or ``phase_carried`` with its original confirmer)."""
    return Confirmation(
        str(e.get("node") or phase),
        str(e.get("confirmed_by") or e.get("operator") or ""),
        _time(e.get("confirmed_at") or e.get("ts")),
        True,
        phase=phase,
        outcome=outcome,
        unattended=bool(e.get("unattended")),
        by_hand=bool(e.get("by_hand")),
    )


def read_journal_state(path: Path, entries: Sequence[dict[str, Any]]) -> JournalState:
    """Replay a journal's events into what it says about the deploy."""
    header = entries[0] if entries else {}
    context = DeployContext()
    finished: dict[str, PhaseOutcome] = {}
    confirmed: dict[str, tuple[PhaseOutcome, Confirmation]] = {}
    items: dict[str, Confirmation] = {}
    running: str | None = None
    ended = False
    for e in entries:
        event, phase = e.get("event"), e.get("phase")
        if event == "context_updated" and isinstance(e.get("changes"), dict):
            context = context.updated(e["changes"])
        elif event == "phase_carried" and phase:
            finished[phase] = _outcome(e)
            confirmed[phase] = (finished[phase], _phase_confirmation(e, phase, finished[phase]))
        elif event == "phase_started" and phase:
            running = phase
            confirmed.pop(phase, None)
        elif event == "phase_finished" and phase:
            finished[phase] = _outcome(e)
            running = None if running == phase else running
        elif event == "phase_by_hand" and phase:
            finished[phase] = PhaseOutcome(PhaseStatus.SKIPPED, "carried out by hand (not automated yet)")
        elif event == "phase_confirmed" and phase and phase in finished:
            confirmed[phase] = (finished[phase], _phase_confirmation(e, phase, finished[phase]))
        elif event in ("item_confirmed", "item_carried") and e.get("item"):
            who = e.get("confirmed_by") or e.get("operator") or ""
            at = _time(e.get("confirmed_at") or e.get("ts"))
            item = str(e["item"])
            items[item] = Confirmation(item, str(who), at, True, unattended=bool(e.get("unattended")))
        elif event == "item_unconfirmed" and e.get("item"):
            items.pop(str(e["item"]), None)
        elif event == "phase_abandoned" and phase:
            running = phase
        elif event == "session_ended":
            ended = True
    return JournalState(
        path,
        str(header.get("operator") or ""),
        str(header.get("ts") or ""),
        ended,
        confirmed,
        finished,
        running,
        context,
        items,
    )


def _time(value: object) -> datetime:
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return datetime.fromtimestamp(0).astimezone()


def read_entries(path: Path) -> list[dict[str, Any]]:
    """A journal's entries; a torn last line (the crash hit mid-write) is ignored."""
    entries: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError:
                break
    return entries


def sessions_of(root: Path, host: str, config: str) -> Iterator[tuple[Path, list[dict[str, Any]]]]:
    """``(journal path, entries)`` of the sessions for this host and config, newest first; sessions that
    were locked out (they ran nothing) are skipped."""
    if not root.is_dir():
        return
    for directory in sorted(root.iterdir(), reverse=True):
        path = directory / "journal.jsonl"
        entries = read_entries(path) if path.is_file() else []
        if not entries:
            continue
        head = entries[0]
        if head.get("host") != host or str(head.get("config") or "") != config:
            continue
        if any(e.get("event") == "lock_refused" for e in entries):
            continue
        yield path, entries


def find_unfinished(sessions_root: Path, host: str, config: str) -> JournalState | None:
    """The newest earlier deploy session for this host and config whose journal has no end."""
    for path, entries in sessions_of(sessions_root, host, config):
        if entries[0].get("kind") == "rollback":  # a rollback session is not a deploy to resume
            continue
        state = read_journal_state(path, entries)
        return None if state.ended else state
    return None


# -- the host ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class HostState:
    """What the host shows now; None where a probe got no definite answer (with the reason in notes)."""

    app_up: bool | None
    head: str | None
    upstream: str | None  # the fetched remote branch's commit
    db_revision: str | None
    notes: tuple[str, ...] = ()
    backup_size: int | None = None  # the size of the journaled backup file on the host (None: absent/unknown)


def probe_host(session: DeploySession, context: DeployContext | None = None) -> HostState:
    """Ask the host, read-only: is the app answering, which commit is checked out, which DB revision,
    and (given a context with a backup) whether that backup file is still there at its size."""
    from todobox_deploy.engine.flask_cli import app_command
    from todobox_deploy.engine.service import (
        parse_probe,
        probe_command,
        probe_says_down,
        service_command,
        service_not_found,
    )

    cfg = session.config
    app = cfg.app
    notes: list[str] = []
    app_up: bool | None = None
    try:
        if app.health_url:
            result = session.capture(probe_command(app, app.health_url), record=False)
            status = parse_probe(result.stdout)
            answer = result.stdout.strip()
            if status is not None:
                app_up = status == 200
            elif probe_says_down(answer):
                app_up = False
            else:
                notes.append(f"health URL: no definite answer ({answer or result.stderr.strip()})")
        else:
            argv = service_command(app, "status")
            if argv is None:
                notes.append("app state: no health_url and no status command to ask")
            else:
                rc = session.capture(argv, record=False).exit_status
                missing = service_not_found(app, "status", rc)
                if missing:  # the program is not there: that says nothing about the app
                    notes.append(f"app state: cannot verify: {missing}")
                else:
                    app_up = rc == 0
    except Exception as exc:  # a probe that fails says so; it never guesses
        notes.append(f"app state: cannot verify: {exc}")

    def git(*argv: str) -> str | None:
        try:
            result = session.capture(app_command(app, list(argv)), record=False)
        except Exception as exc:
            notes.append(f"git {' '.join(argv)}: cannot verify: {exc}")
            return None
        return result.stdout.strip() if result.exit_status == 0 else None

    head = git("git", "rev-parse", "--verify", "HEAD")
    upstream = git("git", "rev-parse", "--verify", f"{app.git_remote}/{app.git_branch}")
    revision: str | None = None
    try:
        conn = session.open_db(read_timeout=10)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT version_num FROM alembic_version")
                rows = cur.fetchall()
            revision = ",".join(str(r[0]) for r in rows) or None
        finally:
            conn.close()
    except Exception as exc:
        notes.append(f"database revision: cannot verify: {exc}")
    backup_size: int | None = None
    if context is not None and context.backup is not None:
        res = session.capture(["stat", "-c", "%s", "--", context.backup.path], record=False)
        text = res.stdout.strip()
        backup_size = int(text) if res.exit_status == 0 and text.isdigit() else None
    return HostState(app_up, head, upstream, revision, tuple(notes), backup_size)


# -- the plan ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResumePlan:
    """Which confirmations carry over, where to resume, and what the host showed beside the journal."""

    carried: tuple[str, ...]
    resume_at: str | None
    done_on_host: PhaseOutcome | None  # the resume phase is already done on the host: confirm, don't run
    rows: tuple[tuple[str, str, str], ...]  # (what, the journal says, the host shows)
    warnings: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "carried": list(self.carried),
            "resume_at": self.resume_at,
            "done_on_host": self.done_on_host.summary if self.done_on_host else None,
            "rows": [list(r) for r in self.rows],
            "warnings": list(self.warnings),
        }


def _show(value: bool | str | None, yes: str = "up", no: str = "down") -> str:
    if value is None:
        return "cannot verify"
    if isinstance(value, bool):
        return yes if value else no
    return value[:12]


def _effect(phase: str, ctx: DeployContext, host: HostState, expected_head: str) -> bool | None:
    """Whether the host shows ``phase``'s effect now (None: cannot tell)."""
    if phase == "stop_app":
        return None if host.app_up is None else not host.app_up
    if phase == "start_app":
        return host.app_up
    if phase == "deploy_code":
        if host.head is None:
            return None
        if ctx.commit_after is not None:
            return host.head == ctx.commit_after
        if ctx.commit_before is not None and host.upstream is not None:
            return host.head == host.upstream and host.head != ctx.commit_before
        return None
    if phase == "backup":
        if ctx.backup is None or not ctx.backup.verified:
            return False
        return None if host.backup_size is None else host.backup_size == ctx.backup.size
    if phase == "migrate":
        return None if host.db_revision is None else host.db_revision == expected_head
    return None


def _done_outcome(phase: str, host: HostState, ctx: DeployContext) -> PhaseOutcome:
    if phase == "backup" and ctx.backup is not None:
        b = ctx.backup
        facts = (
            ("backup", b.path),
            ("size on the host", f"{host.backup_size} bytes (journaled: {b.size})"),
            ("sha256 (journaled)", b.sha256),
        )
        text = f"the verified backup {b.path} is still on the host at its size"
        return PhaseOutcome(PhaseStatus.OK, f"already done on the host ({text}): not run again", facts)
    text = {
        "stop_app": "the app is not answering",
        "start_app": "the app answers its health URL",
        "deploy_code": f"the work tree is at {(host.head or '')[:12]}",
        "migrate": f"the database is at {host.db_revision}",
    }.get(phase, "done")
    facts = (
        ("app", _show(host.app_up)),
        ("HEAD", host.head or "cannot verify"),
        ("alembic_version", host.db_revision or "cannot verify"),
    )
    return PhaseOutcome(PhaseStatus.OK, f"already done on the host ({text}): not run again", facts)


def plan_resume(
    state: JournalState,
    host: HostState,
    order: Sequence[str],
    changes_host: Iterable[str],
    expected_head: str,
) -> ResumePlan:
    """Carry over what the host still proves; resume at the first phase it cannot."""
    changing = set(changes_host)
    ctx = state.context
    carried: list[str] = []
    warnings: list[str] = list(host.notes)
    # stop and start undo each other: only the later confirmed one's effect must still show
    overridden = {"stop_app"} if "start_app" in state.confirmed else set()
    resume_at: str | None = None
    for phase in order:
        if phase not in state.confirmed:
            resume_at = phase
            break
        _, c = state.confirmed[phase]
        if phase in changing and not c.by_hand and phase not in overridden:
            shown = _effect(phase, ctx, host, expected_head)
            if shown is not True:
                why = "cannot verify it" if shown is None else "does not show it"
                warnings.append(f"the journal says {phase} was confirmed, but the host {why}: resuming there")
                resume_at = phase
                break
        carried.append(phase)
    done: PhaseOutcome | None = None
    if resume_at is not None and resume_at in changing and _effect(resume_at, ctx, host, expected_head):
        done = _done_outcome(resume_at, host, ctx)
    if state.running is not None:
        warnings.append(f"the earlier session ended while {state.running} was running")
    if host.app_up is False:
        since = f" (stopped at {ctx.app_down_at})" if ctx.app_down_at else ""
        warnings.append(f"the app is DOWN on the host{since}")
    unconfirmed = [p for p in state.finished if p not in state.confirmed]
    app_expected: bool | None = None
    for phase in carried:
        app_expected = {"stop_app": False, "start_app": True}.get(phase, app_expected)
    rows = (
        ("app", "running" if app_expected in (True, None) else "stopped", _show(host.app_up)),
        ("commit", (ctx.commit_after or ctx.commit_before or "unknown")[:12], _show(host.head)),
        (
            "database revision",
            ctx.db_revision_after or ctx.db_revision_before or "?",
            _show(host.db_revision),
        ),
        ("phase running at the crash", state.running or "none", "-"),
        ("finished, not confirmed", ", ".join(unconfirmed) or "none", "-"),
        (
            "confirmed phases",
            ", ".join(state.confirmed) or "none",
            f"carried: {', '.join(carried) or 'none'}",
        ),
    )
    return ResumePlan(tuple(carried), resume_at, done, rows, tuple(warnings))
