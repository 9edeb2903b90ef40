"""The deploy flow: order, gates, context, journal and lock for one session, for every front end.

The TUI and the plain front end only render the flow and forward the operator's answers. Blocking calls
(:meth:`DeployFlow.execute`) belong in a worker thread; everything else is quick.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from todobox_deploy.checklist.model import ChecklistNode, NodeKind
from todobox_deploy.checklist.progress import Confirmation, DeployProgress
from todobox_deploy.core import exits
from todobox_deploy.core.context import DeployContext
from todobox_deploy.core.outcome import PhaseOutcome, PhaseStatus
from todobox_deploy.core.streams import OutputSink
from todobox_deploy.core.text import inert
from todobox_deploy.engine.credentials import CredentialsError
from todobox_deploy.engine.phases.spec import PhaseCall, PhaseSpec
from todobox_deploy.engine.transcript import Transcript

if TYPE_CHECKING:
    from todobox_deploy.checklist.report import SignOffReport
    from todobox_deploy.engine.lock import HostLock
    from todobox_deploy.engine.session import DeploySession

DONE_BY_HAND = "carried out by hand (not automated yet)"
SKIPPABLE = frozenset({"verify_files", "db_check", "notify"})
"""Read-only phases an operator may skip after a failure, with a reason (nothing else is ever skipped)."""


class Recorder(Protocol):
    """Where the flow writes its events (the session journal)."""

    def record(self, event: str, **fields: Any) -> dict[str, Any]: ...


class _NoJournal:
    def record(self, event: str, **fields: Any) -> dict[str, Any]:
        return {"event": event, **fields}


class GateRefused(RuntimeError):
    """A phase may not start now; the message says why (e.g. an earlier phase is not confirmed)."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


def describe(exc: BaseException) -> str:
    """A one-line, operator-facing description of a failure (never a bare traceback)."""
    if isinstance(exc, CredentialsError):
        return f"database credentials: {exc}"
    module = type(exc).__module__
    if module.startswith("pymysql"):
        args: tuple[object, ...] = tuple(getattr(exc, "args", ()))
        if len(args) == 2 and isinstance(args[0], int):
            return f"MySQL error {args[0]}: {args[1]}"
    if module.startswith("todobox_deploy.remote"):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


class DeployFlow:
    """One deploy session's state machine over the checklist's phases."""

    def __init__(
        self,
        checklist: ChecklistNode,
        phases: Mapping[str, PhaseSpec],
        *,
        session: DeploySession | None,
        operator: str,
        host: str | None,
        journal: Recorder | None = None,
        transcript_dir: Path | None = None,
        lock: HostLock | None = None,
        clock: Callable[[], datetime] = _utc_now,
        context: DeployContext | None = None,
    ) -> None:
        self.checklist = checklist
        self.phases = phases
        self.session = session
        self.operator = operator
        self.host = host
        self.journal: Recorder = journal or _NoJournal()
        self.transcript_dir = transcript_dir
        self.lock = lock
        self.clock = clock
        self.context = context or DeployContext()
        self.progress = DeployProgress(checklist)
        self.started_at = clock()
        self.phase_started_at: datetime | None = None
        self._cancel: threading.Event | None = None
        self._mutex = threading.RLock()
        self.closed = False
        self.session_dir: Path | None = None
        self.journal_path: Path | None = None
        self.journal_errors: list[str] = []
        self.on_journal_error: Callable[[str], None] | None = None  # a front end shows it
        if session is not None:
            session.on_reconnect = self._reconnected

    # -- queries ------------------------------------------------------------------------------

    @property
    def order(self) -> tuple[str, ...]:
        return self.progress.order

    @property
    def running(self) -> str | None:
        return self.progress.running

    def can_run(self, phase_id: str) -> bool:
        """Whether the engine runs this phase (else the operator carries it out by hand)."""
        spec = self.phases.get(phase_id)
        return spec is not None and spec.body is not None

    def spec(self, phase_id: str) -> PhaseSpec | None:
        return self.phases.get(phase_id)

    def node(self, phase_id: str) -> ChecklistNode | None:
        return self.checklist.find_phase(phase_id)

    def title(self, phase_id: str) -> str:
        node = self.node(phase_id)
        return node.title if node else phase_id

    def changes_host_now(self, phase_id: str) -> bool:
        """Whether running ``phase_id`` now changes the host (see :meth:`PhaseSpec.changes_host_now`)."""
        spec = self.phases.get(phase_id)
        return spec is not None and spec.changes_host_now(self.context)

    def next_phase(self) -> str | None:
        return self.progress.next_phase()

    def refusal(self, phase_id: str) -> str | None:
        """Why ``phase_id`` may not start now, or None."""
        reason = self.progress.refusal(phase_id)
        if reason is not None:
            return reason
        spec = self.phases.get(phase_id)
        if spec is not None and spec.body is not None:
            missing = [n for n in spec.needs if not self.context.is_set(n)]
            if missing:
                return f"phase {phase_id!r} needs {', '.join(missing)} from an earlier phase"
        return None

    def open_items_before(self, phase_id: str) -> tuple[ChecklistNode, ...]:
        return self.progress.open_items_before(phase_id)

    @property
    def all_confirmed(self) -> bool:
        return self.progress.all_confirmed

    @property
    def success_met(self) -> bool:
        """Every success criterion is confirmed."""
        return all(n.id in self.progress.item_confirmations for n in self.manual_items("success"))

    def exit_code(self) -> int:
        """0: done, success criteria met; 1: a phase failed, unconfirmed; 3: a person is needed."""
        if self.all_confirmed and self.success_met:
            return exits.OK
        failed = (PhaseStatus.FAILED, PhaseStatus.CANCELLED)
        if any(
            o.status in failed and not self.progress.is_confirmed(p)
            for p, o in self.progress.outcomes.items()
        ):
            return exits.PHASE_FAILED
        return exits.NEEDS_PERSON

    def report(self) -> SignOffReport:
        return self.progress.report(self.operator, self.host, self.clock())

    # -- journal ------------------------------------------------------------------------------

    def record(self, event: str, **fields: Any) -> None:
        """Journal an event. A failing journal is reported to ``on_journal_error`` (loud, not fatal)."""
        try:
            self.journal.record(event, **fields)
        except Exception as exc:
            self.journal_errors.append(f"{type(exc).__name__}: {exc}")
            if self.on_journal_error is not None:
                self.on_journal_error(f"journal write failed ({event}): {type(exc).__name__}: {exc}")

    def issue_matched(self, row: str, source: str, line: str) -> None:
        """A line of ``source`` (a phase or a monitoring tail) showed a row of the checklist's "Common
        Issues" (``engine.issues``, which reports each row once per session): journaled, the line inert."""
        self.record("issue_matched", row=row, source=source, line=inert(line))

    def _reconnected(self, reason: str) -> None:
        self.record("connection_reestablished", reason=reason, phase=self.running)

    def _context_changed(self, before: DeployContext) -> None:
        changes = self.context.changes_from(before)
        if changes:
            self.record("context_updated", changes=changes)

    # -- running phases -----------------------------------------------------------------------

    def begin(self, phase_id: str) -> None:
        """Mark the phase running (quick; on the front end's thread). Raises GateRefused."""
        with self._mutex:
            reason = self.refusal(phase_id)
            if reason is None and not self.can_run(phase_id):
                reason = f"phase {phase_id!r} is not automated yet: carry it out by hand"
            if reason is not None:
                self.record("phase_refused", phase=phase_id, reason=reason)
                raise GateRefused(reason)
            self.progress.start(phase_id)
            self.phase_started_at = self.clock()
            self._cancel = threading.Event()
            if self.session is not None:
                self.session.take_commands()
            self.record(
                "phase_started", phase=phase_id, open_items=[n.id for n in self.open_items_before(phase_id)]
            )

    @property
    def cancel_event(self) -> threading.Event | None:
        return self._cancel

    def request_cancel(self) -> bool:
        """Ask the running phase to stop (its remote process group is terminated)."""
        with self._mutex:
            if self.running is None or self._cancel is None or self._cancel.is_set():
                return False
            self._cancel.set()
            self.record("cancel_requested", phase=self.running)
            return True

    def execute(self, phase_id: str, sink: OutputSink, cancel: threading.Event | None = None) -> PhaseOutcome:
        """Run a begun phase to its outcome (blocking: call it from a worker thread); never raises."""
        spec = self.phases[phase_id]
        assert spec.body is not None and self.running == phase_id
        cancel = cancel or self._cancel or threading.Event()
        self._cancel = cancel
        transcript = Transcript(self.transcript_dir, phase_id) if self.transcript_dir else None
        out = transcript.tee(sink) if transcript else sink
        timed_out = threading.Event()

        def time_out() -> None:
            timed_out.set()
            cancel.set()

        timer = threading.Timer(spec.timeout, time_out) if spec.timeout else None
        if timer is not None:
            timer.daemon = True
            timer.start()
        started = time.monotonic()
        call = PhaseCall(self.session, out, cancel, self.context, self._established)  # type: ignore[arg-type]
        try:
            outcome = spec.body(call)
        except Exception as exc:  # one place turns every failure into an outcome the operator can read
            outcome = PhaseOutcome(PhaseStatus.FAILED, describe(exc))
            out("error", [outcome.summary])
            if transcript is not None:
                text = traceback.format_exc()
                transcript.write_text(self.session.secrets.redact(text) if self.session else text)
        finally:
            if timer is not None:
                timer.cancel()
        seconds = time.monotonic() - started
        outcome = outcome.fail_closed()
        if cancel.is_set() and outcome.status is not PhaseStatus.FAILED:
            why = f"timed out after {spec.timeout:g} s" if timed_out.is_set() else "cancelled by the operator"
            outcome = outcome.replaced(PhaseStatus.CANCELLED, why)
        out("info", [f"{phase_id}: {outcome.status.value}: {outcome.summary}"])
        if transcript is not None:
            transcript.close()
        return self._finish(phase_id, outcome, seconds)

    def _established(self, before: DeployContext, after: DeployContext) -> None:
        """A phase set context fields: journaled at once, so a crash right after keeps them."""
        with self._mutex:
            self.context = after
            self._context_changed(before)

    def _finish(self, phase_id: str, outcome: PhaseOutcome, seconds: float, **extra: Any) -> PhaseOutcome:
        """Record the outcome (made to fail closed: see :meth:`PhaseOutcome.fail_closed`) and journal it
        with its evidence, each fact with how it was obtained."""
        outcome = outcome.fail_closed()
        with self._mutex:
            commands = [c.to_json() for c in self.session.take_commands()] if self.session else []
            self.progress.finish(phase_id, outcome)
            self._cancel = None
            self.record(
                "phase_finished",
                phase=phase_id,
                status=outcome.status.value,
                summary=outcome.summary,
                facts=dict(outcome.facts),
                evidence=[f.to_json() for f in outcome.evidence],
                commands=commands,
                seconds=round(seconds, 3),
                **extra,
            )
            return outcome

    def crashed(self, phase_id: str, summary: str) -> None:
        """A front end's worker died around a running phase: finish it as FAILED, on the record."""
        with self._mutex:
            if self.running == phase_id:
                outcome = PhaseOutcome(PhaseStatus.FAILED, summary)
                self._finish(phase_id, outcome, 0.0)

    def run(self, phase_id: str, sink: OutputSink, cancel: threading.Event | None = None) -> PhaseOutcome:
        """``begin`` then ``execute``. Raises GateRefused."""
        self.begin(phase_id)
        return self.execute(phase_id, sink, cancel)

    def by_hand(self, phase_id: str) -> PhaseOutcome:
        """A phase the engine cannot run: the operator carries it out by hand, then confirms it."""
        with self._mutex:
            reason = self.refusal(phase_id)
            if reason is not None:
                self.record("phase_refused", phase=phase_id, reason=reason)
                raise GateRefused(reason)
            outcome = PhaseOutcome(PhaseStatus.SKIPPED, DONE_BY_HAND)
            self.progress.start(phase_id)
            self.progress.finish(phase_id, outcome)
            self.record("phase_by_hand", phase=phase_id)
            return outcome

    def skip(self, phase_id: str, reason: str) -> PhaseOutcome:
        """Skip a read-only phase (see :data:`SKIPPABLE`) with the operator's reason, on the record; the
        outcome (SKIPPED) is then confirmed like any other. Raises GateRefused (a phase that changes the
        host, or one out of order, is never skipped)."""
        with self._mutex:
            reason = " ".join(reason.split())
            spec = self.phases.get(phase_id)
            refusal = self.progress.refusal(phase_id)
            if refusal is None and not reason:
                refusal = "a reason is needed to skip a phase"
            if refusal is None and (spec is None or spec.changes_host or phase_id not in SKIPPABLE):
                refusal = f"phase {phase_id!r} may not be skipped: only {', '.join(sorted(SKIPPABLE))} can be"
            if refusal is not None:
                self.record("phase_refused", phase=phase_id, reason=refusal)
                raise GateRefused(refusal)
            outcome = PhaseOutcome(
                PhaseStatus.SKIPPED,
                f"skipped by {self.operator}: {reason}",
                (("skipped by", self.operator), ("reason", reason)),
            )
            self.progress.start(phase_id)
            self.progress.finish(phase_id, outcome)
            self.record("phase_skipped", phase=phase_id, reason=reason, by=self.operator)
            return outcome

    # -- the online migration option -------------------------------------------------------

    def online_offer(self) -> str | None:
        """At the stop gate, when the rehearsal saw a purely additive migration: the offer to migrate while
        the old code still serves (the downtime is then the restart alone); None when not on offer."""
        ctx = self.context
        if ctx.migration_additive is not True or ctx.online_migration is not None or ctx.nothing_to_deploy:
            return None
        if "stop_app" not in self.phases or self.progress.status.get("stop_app") is not PhaseStatus.PENDING:
            return None
        seconds = self.context.rehearsal_seconds
        took = f" (it took {seconds:.1f} s on the copy)" if seconds is not None else ""
        return (
            f"The rehearsal saw a purely additive migration{took}: migrate while the old code still "
            "serves, then restart into the new code, so that the downtime is the restart alone? "
            "The checklist's order (stop, migrate, start) is the default."
        )

    def choose_online(self, online: bool) -> None:
        """The operator's answer to :meth:`online_offer` (journaled)."""
        with self._mutex:
            before = self.context
            self.context = dataclasses.replace(before, online_migration=online)
            self.record("online_migration_chosen" if online else "online_migration_declined")
            self._context_changed(before)

    def abandon(self, reason: str) -> None:
        """The session ends while a phase runs (the operator quit): say so in the journal."""
        with self._mutex:
            if self.running is not None:
                if self._cancel is not None:
                    self._cancel.set()
                self.record(
                    "phase_abandoned", phase=self.running, reason=reason, context=self.context.to_json()
                )

    # -- confirmations ------------------------------------------------------------------------

    def confirm(self, phase_id: str, accepted: bool, *, unattended: bool = False) -> Confirmation:
        """The operator's verdict on a finished phase; only an accepted, acceptable outcome unlocks."""
        with self._mutex:
            by_hand = self.progress.outcomes.get(phase_id) == PhaseOutcome(PhaseStatus.SKIPPED, DONE_BY_HAND)
            c = self.progress.confirm_phase(
                phase_id, self.operator, self.clock(), accepted, unattended=unattended, by_hand=by_hand
            )
            outcome = c.outcome
            self.record(
                "phase_confirmed" if c.accepted else "phase_not_confirmed",
                phase=phase_id,
                node=c.node_id,
                answer=accepted,
                status=outcome.status.value if outcome else None,
                summary=outcome.summary if outcome else None,
                unattended=unattended,
                by_hand=by_hand,
            )
            return c

    def toggle_item(self, node_id: str) -> Confirmation:
        """Tick a manual item, or withdraw the tick."""
        return self.set_item(node_id, node_id not in self.progress.item_confirmations)

    def set_item(self, node_id: str, confirmed: bool, *, unattended: bool = False) -> Confirmation:
        with self._mutex:
            node = self.checklist.find(node_id)
            c = self.progress.set_item(node_id, self.operator, self.clock(), confirmed, unattended=unattended)
            self.record(
                "item_confirmed" if c.accepted else "item_unconfirmed",
                item=node_id,
                title=node.title if node else node_id,
                unattended=unattended,
            )
            return c

    def manual_items(self, section: str | None = None) -> tuple[ChecklistNode, ...]:
        """Manual items (of one top-level section, or all), in checklist order."""
        return tuple(
            n
            for n in self.checklist.walk()
            if n.kind is NodeKind.MANUAL and (section is None or n.id.split(".", 1)[0] == section)
        )

    # -- restoring a session ------------------------------------------------------------------

    def restore(
        self,
        phases: Mapping[str, tuple[PhaseOutcome, Confirmation]],
        context: DeployContext,
        *,
        items: Mapping[str, Confirmation] | None = None,
    ) -> None:
        """Take over confirmed phases and the context from an earlier session of this deploy (resume)."""
        with self._mutex:
            for phase_id in self.order:
                if phase_id not in phases:
                    break
                outcome, c = phases[phase_id]
                self.progress.status[phase_id] = outcome.status
                self.progress.outcomes[phase_id] = outcome
                self.progress.phase_confirmations[phase_id] = c
                self.record(
                    "phase_carried",
                    phase=phase_id,
                    node=c.node_id,
                    status=outcome.status.value,
                    summary=outcome.summary,
                    facts=dict(outcome.facts),
                    evidence=[f.to_json() for f in outcome.evidence],
                    confirmed_by=c.operator,
                    confirmed_at=c.at.isoformat(timespec="seconds"),
                    unattended=c.unattended,
                    by_hand=c.by_hand,
                )
            for node_id, c in (items or {}).items():
                self.progress.item_confirmations[node_id] = c
                self.record(
                    "item_carried",
                    item=node_id,
                    confirmed_by=c.operator,
                    confirmed_at=c.at.isoformat(timespec="seconds"),
                    unattended=c.unattended,
                )
            before = self.context
            self.context = context
            self._context_changed(before)

    def done_on_host(self, phase_id: str, outcome: PhaseOutcome) -> None:
        """On resume: the host already shows this phase done, so it is not run again; the operator
        confirms the host's evidence instead."""
        with self._mutex:
            self.progress.start(phase_id)
            self.phase_started_at = self.clock()
            self._finish(phase_id, outcome, 0.0, proven_on_host=True)

    # -- ending -------------------------------------------------------------------------------

    def close(self, exit_code: int, reason: str) -> None:
        """End the session: journal it and release the host lock. Idempotent."""
        with self._mutex:
            if self.closed:
                return
            self.closed = True
            self.abandon(reason)
            if self.lock is not None:
                try:
                    self.lock.release()
                    self.record("lock_released")
                except Exception as exc:  # the session must still end on the record
                    self.record("lock_release_failed", error=describe(exc))
            self.record("session_ended", exit_code=exit_code, reason=reason)
