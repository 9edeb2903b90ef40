"""The plain front end: the same deploy flow as line output, for CI logs, screen readers, dumb terminals.

Each phase's live output is prefixed by its stream, the evidence is an aligned table, and every question
ends with ``[y/N]`` and takes its answer from one line of stdin (end of input means no). ``--yes``
answers every gate yes; manual items are then confirmed as *unattended*, and a phase the engine cannot
run stops the run (exit 3).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Sequence
from typing import TextIO

from todobox_deploy.checklist.progress import ACCEPTABLE, Confirmation
from todobox_deploy.core import exits
from todobox_deploy.core.outcome import PhaseOutcome
from todobox_deploy.core.streams import HOST_STREAMS, Stream
from todobox_deploy.core.text import inert
from todobox_deploy.engine.flow import DeployFlow, GateRefused
from todobox_deploy.engine.issues import IssueMatch, IssueWatch
from todobox_deploy.engine.launch import Resumable

PREFIX: dict[Stream, str] = {"stdout": "out", "stderr": "err", "info": "  #", "error": "ERR"}


def table(rows: Sequence[tuple[str, str]], indent: str = "  ") -> list[str]:
    """Rows as two aligned columns (every cell made inert)."""
    cells = [(inert(k), inert(v)) for k, v in rows]
    width = max((len(k) for k, _ in cells), default=0)
    return [f"{indent}{k.ljust(width)}  {v}" for k, v in cells]


class Console:
    """Line output and ``[y/N]`` questions on a pair of streams."""

    def __init__(
        self, *, yes: bool, online: bool = False, stdin: TextIO | None = None, stdout: TextIO | None = None
    ) -> None:
        self.yes = yes
        self.online = online  # with yes: take the online migration when it is offered
        self.stdin = stdin or sys.stdin
        self.stdout = stdout or sys.stdout
        self._lock = threading.Lock()
        self.issues = IssueWatch()  # the checklist's "Common Issues" rows, each said once per run
        self.issue_source: Callable[[], str] = lambda: "output"  # the phase the lines come from
        self.on_issue: Callable[[IssueMatch], None] | None = None  # the run journals each match

    def say(self, *lines: str) -> None:
        with self._lock:
            self.stdout.write("".join(line + "\n" for line in lines))
            self.stdout.flush()

    def ask(self, question: str) -> bool:
        """``question [y/N]``: yes only for a line starting with y; end of input is no."""
        with self._lock:
            self.stdout.write(f"{question} [y/N] ")
            if self.yes:
                self.stdout.write("y (--yes)\n")
                self.stdout.flush()
                return True
            self.stdout.flush()
            line = self.stdin.readline()
            if not line:
                self.stdout.write("(end of input: no)\n")
                self.stdout.flush()
                return False
            if not self.stdin.isatty():  # a scripted answer: show it, so the log reads as a dialogue
                self.stdout.write(inert(line.strip()) + "\n")
                self.stdout.flush()
        return line.strip().lower() in ("y", "yes")

    def sink(self, stream: Stream, lines: list[str]) -> None:
        tag = PREFIX.get(stream, "   ")
        self.say(*(f"{tag}| {inert(line)}" for line in lines))
        if stream not in HOST_STREAMS:  # our own messages (a summary saying "no Unknown column") never match
            return
        for match in self.issues.feed(self.issue_source(), lines):
            self.say(f"!! common issue: {inert(match.row.title)}: {inert(match.row.action)}")
            if self.on_issue is not None:
                self.on_issue(match)


def show_resume(console: Console, found: Resumable) -> None:
    """What the earlier session's journal says beside what the host shows now."""
    prev, plan = found.previous, found.plan
    console.say(
        inert(f"The last session for this host did not end: {prev.path}"),
        inert(f"  started {prev.started} by {prev.operator}"),
        "",
        "  what                          the journal says        the host shows",
    )
    for what, says, shows in plan.rows:
        console.say(f"  {inert(what):<30}{inert(says):<24}{inert(shows)}")
    for warning in plan.warnings:
        console.say(f"  ! {inert(warning)}")
    if plan.resume_at is None:
        console.say("  every phase is confirmed and still shows on the host")
    else:
        done = " (already done on the host: you confirm, it is not run again)" if plan.done_on_host else ""
        console.say(inert(f"  resume at: {plan.resume_at}{done}"))


def _confirmations(flow: DeployFlow) -> list[Confirmation | None]:
    """Each phase's confirmation, in the sign-off's order."""
    return [p.confirmation for p in flow.report().phases]


def _who(c: Confirmation | None) -> str:
    if c is None:
        return "not confirmed"
    return c.operator + (" by hand" if c.by_hand else "") + (" unattended" if c.unattended else "")


class PlainRun:
    """Drives a :class:`DeployFlow` to its end on a console; returns the exit code."""

    def __init__(self, flow: DeployFlow, console: Console) -> None:
        self.flow = flow
        self.console = console
        console.issue_source = lambda: flow.running or "output"
        console.on_issue = lambda m: flow.issue_matched(m.row.key, m.source, m.line)

    def run(self) -> int:
        flow, say = self.flow, self.console.say
        say(
            inert(f"journal: {flow.journal_path}"),
            inert(f"operator: {flow.operator}"),
            inert(f"host: {flow.host}"),
        )
        while (phase := flow.next_phase()) is not None:
            self._items_before(phase)
            code = self._phase(phase)
            if code is not None:
                return code
        for section in ("postdeploy", "success"):
            for node in flow.manual_items(section):
                if node.id not in flow.progress.item_confirmations:
                    self._item(node.id, node.title)
        return self._finish()

    def _items_before(self, phase: str) -> None:
        for node in self.flow.open_items_before(phase):
            self._item(node.id, node.title)

    def _item(self, node_id: str, title: str) -> None:
        if self.console.ask(f"Done by hand: {title}?"):
            self.flow.set_item(node_id, True, unattended=self.console.yes)

    def _phase(self, phase: str) -> int | None:
        flow, say = self.flow, self.console.say
        say("", f"== {flow.title(phase)} ({phase}) ==")
        offer = flow.online_offer() if phase == "stop_app" else None
        if offer is not None:
            say(inert(offer))
            if self.console.yes:
                if self.console.online:
                    say("(--online: migrating while the old code serves; step 7 restarts into the new code)")
                else:
                    say("(--yes keeps the checklist's order: stop, migrate, start; --online takes the offer)")
                flow.choose_online(self.console.online)
            else:
                flow.choose_online(
                    self.console.ask("Migrate online (the app keeps serving until the restart)?")
                )
        outcome = flow.progress.outcomes.get(phase)
        if outcome is None or flow.progress.running is not None:
            if not flow.can_run(phase):
                return self._by_hand(phase)
            try:
                outcome = self._execute(phase)
            except GateRefused as refused:
                say(inert(f"refused: {refused}"))
                return exits.NEEDS_PERSON
        self._evidence(outcome)
        if outcome.status not in ACCEPTABLE:
            flow.confirm(phase, False)
            say(f"{phase} did not succeed: {inert(outcome.summary)}", self._host_state(phase))
            return exits.PHASE_FAILED
        if not self.console.ask("Confirm?"):
            flow.confirm(phase, False)
            say(f"stopped at {phase}: not confirmed")
            return exits.NEEDS_PERSON
        flow.confirm(phase, True, unattended=self.console.yes)
        return None

    def _by_hand(self, phase: str) -> int | None:
        flow, say = self.flow, self.console.say
        if self.console.yes:
            say(
                f"stopped at {phase} ({flow.title(phase)}): it is not automated yet; --yes never "
                "confirms work done by hand. Carry it out by hand, then run again without --yes."
            )
            return exits.NEEDS_PERSON
        say("not automated yet: carry it out by hand from the checklist, then confirm it here")
        if not self.console.ask(f"Carried out by hand: {flow.title(phase)}?"):
            say(f"stopped at {phase}: not done by hand")
            return exits.NEEDS_PERSON
        flow.by_hand(phase)
        flow.confirm(phase, True)
        return None

    def _execute(self, phase: str) -> PhaseOutcome:
        """Run the phase in a thread so that ctrl+c cancels it (its remote process group is killed)."""
        flow = self.flow
        flow.begin(phase)
        result: list[PhaseOutcome] = []
        worker = threading.Thread(
            target=lambda: result.append(flow.execute(phase, self.console.sink)), name=f"phase-{phase}"
        )
        worker.start()
        while worker.is_alive():
            try:
                worker.join(0.2)
            except KeyboardInterrupt:
                if flow.request_cancel():
                    self.console.say(f"cancelling {phase}...")
        return result[0]

    def _evidence(self, outcome: PhaseOutcome) -> None:
        say = self.console.say
        say(f"{outcome.status.value.upper()}: {inert(outcome.summary)}")
        if outcome.facts:  # how each fact was obtained: observed, cannot verify, assumed
            say("evidence:", *table([(k, f"[{how}] {v}" if how else v) for k, v, how in outcome.rows()]))

    def _host_state(self, phase: str) -> str:
        """A line on what the host shows now, after a failure."""
        session = self.flow.session
        if session is None:
            return "host state: unknown (no session)"
        from todobox_deploy.engine.resume import probe_host

        try:
            host = probe_host(session)
        except Exception as exc:  # the failure report must not fail
            return f"host state: cannot verify: {inert(str(exc))}"
        app = "cannot verify" if host.app_up is None else ("up" if host.app_up else "down")
        ctx = self.flow.context
        before = f" (before the deploy: {ctx.commit_before[:12]})" if ctx.commit_before else ""
        return inert(  # HEAD and the DB revision come from the host
            f"host state: app {app}; HEAD {(host.head or 'cannot verify')[:12]}{before}; "
            f"alembic_version {host.db_revision or 'cannot verify'}"
        )

    def _finish(self) -> int:
        from todobox_deploy.engine.signoff import build_signoff, sign

        flow, say = self.flow, self.console.say
        preview = build_signoff(flow)
        say("", "== sign-off ==", f"downtime: {inert(preview.downtime)}")
        rows = [
            (p.title, f"{p.status:<8} {_who(c)}")
            for p, c in zip(preview.phases, _confirmations(flow), strict=True)
        ]
        rows += [(i.title, f"{i.verdict}: {i.evidence}") for i in (*preview.post_deploy, *preview.success)]
        say(*table(rows))
        name: str | None = None
        if flow.checklist.id != "rollback":
            if self.console.yes:
                say("not signed: an unattended run (--yes) is never signed off by a person")
            elif self.console.ask(f"Sign off as {flow.operator}?"):
                name = flow.operator
            signed, paths = sign(flow, name)
            state = "complete" if signed.complete else "NOT complete: " + "; ".join(signed.problems)
            say(f"sign-off {inert(state)}")
            if paths is not None:
                say(f"sign-off written: {paths[0]} and {paths[1].name}")
        code = flow.exit_code()
        what = "rollback" if flow.checklist.id == "rollback" else "deploy"
        say("", f"{what} complete" if code == exits.OK else f"{what} not complete: items above need a person")
        return code
