"""The wizard: checklist tree, node details, the log pane, and the gated phase runs."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Static, Tree

from todobox_deploy.checklist.data import DOCS
from todobox_deploy.checklist.model import ChecklistNode, NodeKind
from todobox_deploy.core.outcome import PhaseStatus
from todobox_deploy.core.startup import end_startup
from todobox_deploy.core.streams import HOST_STREAMS
from todobox_deploy.engine.flow import DeployFlow, GateRefused, describe
from todobox_deploy.tui.cockpit import cockpit_for
from todobox_deploy.tui.messages import DocsRead, LogBatch, PhaseFinished, PhaseStarted
from todobox_deploy.tui.text import for_display, for_markdown
from todobox_deploy.tui.widgets.checklist_tree import ChecklistTree
from todobox_deploy.tui.widgets.deploy_header import DeployHeader, header_facts
from todobox_deploy.tui.widgets.footer import DeployFooter
from todobox_deploy.tui.widgets.log_pane import GUTTER, LogPane

if TYPE_CHECKING:
    from textual.widgets import Markdown

    from todobox_deploy.tui.screens.confirm import Answer

# The gates, the sign-off, the docs rendering and the phase sink load on first use, and the details'
# Markdown widget right after the first frame: the first frame needs none of them
# (tests/bench_first_frame.py).

Clock = Callable[[], datetime]
DocsKey = tuple[str, str | None, str | None]

SEVERITY = {PhaseStatus.OK: "information", PhaseStatus.WARNING: "warning", PhaseStatus.SKIPPED: "information"}


def _elapsed(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}:{secs:02d}"


BY_HAND = "not automated yet: carry it out by hand from the checklist text below, then confirm it here"
WIDE = 100  # columns from which the header labels its facts


def details_markdown(node: ChecklistNode, flow: DeployFlow) -> str:
    """The details panel for one node: what it is, its body, and its outcome/confirmation if any.

    Everything that may come from the host (summary, facts, a refusal, who confirmed) is ``for_markdown``:
    shown literally, never as Markdown. Only the checklist's own text is Markdown."""
    progress = flow.progress
    automated = node.phase is None or flow.can_run(node.phase)
    lines = [f"## {node.title}", "", f"`{node.id}` · {node.kind.value}"]
    if node.phase is not None:
        lines[-1] += f" · phase `{node.phase}` · **{progress.status[node.phase].value}**"
        refusal = flow.refusal(node.phase)
        ready = "*Ready: `r` runs this phase.*" if automated else f"*Ready: {BY_HAND} (`r`).*"
        lines += ["", f"*Gate: {for_markdown(refusal)}*" if refusal else ready]
    outcome = progress.outcomes.get(node.phase) if node.phase else None
    if outcome is not None:
        lines += [
            "",
            "### Outcome",
            "",
            f"**{outcome.status.value.upper()}**: {for_markdown(outcome.summary)}",
        ]
        if outcome.facts:
            lines += ["", "| Fact | Value |", "|---|---|"]
            lines += [f"| {for_markdown(k)} | {for_markdown(v)} |" for k, v in outcome.facts]
    c = progress.phase_confirmations.get(node.phase or "") or progress.item_confirmations.get(node.id)
    if c is not None:
        verdict = "confirmed" if c.accepted else "acknowledged (not accepted)"
        verdict += " unattended (--yes)" if c.unattended else ""
        lines += ["", f"*{verdict} by {for_markdown(c.operator)} at {c.at.isoformat(timespec='seconds')}*"]
    elif node.kind is NodeKind.MANUAL:
        lines += ["", "*Press `c` (or space) to confirm this item.*"]
    unconfirmed = node.phase is not None and not progress.is_confirmed(node.phase)
    if unconfirmed and outcome is not None and node.phase != progress.running:
        lines += ["", "*Not confirmed: press `c` to review the evidence, or `r` to run it again.*"]
    if node.body:  # the checklist's own text comes after the evidence
        lines += ["", node.body]
    return "\n".join(lines)


class WizardScreen(Screen[None]):
    """Runs phases one at a time; each must be confirmed before the next can start."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "run_phase", "Run phase", id="run_phase", tooltip="Run the selected automated phase"),
        Binding("g", "run_next", "Run next", id="run_next", tooltip="Run the next unconfirmed phase"),
        Binding(
            "c", "confirm_item", "Confirm", id="confirm_item", tooltip="Tick a manual item, or review a phase"
        ),
        Binding("escape,ctrl+c", "cancel_phase", "Cancel phase", id="cancel_phase", key_display="esc"),
        Binding(
            "l",
            "follow_live",
            "Follow live",
            id="follow_live",
            tooltip="Show the running phase's tail",
            show=False,
        ),
        Binding("slash", "log_search", "Search log", id="log_search", show=False),
        Binding("f", "log_follow", "Follow", id="log_follow", show=False),
        Binding("b", "bundle", "Support bundle", id="bundle", show=False, tooltip="Write the support bundle"),
        Binding("z", "zoom_details", "Zoom details", id="zoom_details", show=False),
    ]

    def __init__(self, flow: DeployFlow, *, clock: Clock, max_log_lines: int = 10_000) -> None:
        super().__init__()
        self.flow = flow
        self.checklist = flow.checklist
        self.progress = flow.progress
        self.operator = flow.operator
        self.host = flow.host
        self.clock = clock
        self._max_log_lines = max_log_lines
        self._session_start = flow.started_at
        self.selected: ChecklistNode = flow.checklist
        self._docs: dict[DocsKey, str] = {}  # the docs panel's Markdown by what it was read for
        self._docs_reading: set[DocsKey] = set()
        self._details_text: str | None = None  # what the details panel shows
        self.first_frame_shown = False  # set by the app once this screen's first frame is written
        self._rest_loaded = False

    def _first_node(self) -> ChecklistNode | None:
        first = self.flow.next_phase()
        return self.checklist.find_phase(first) if first else None

    def compose(self) -> ComposeResult:
        # The details start with the first phase's title; its text comes in the Markdown widget, mounted
        # right after the first frame (parsing and mounting the document would hold that frame back).
        self.selected = self._first_node() or self.checklist
        self._details_text = self._details(self.selected)
        yield DeployHeader(id="header")
        with Horizontal(id="wizard-main"):
            yield ChecklistTree(self.checklist, id="tree")
            with Vertical(id="wizard-right"):
                with VerticalScroll(id="details"):
                    yield Static(Text(self.selected.title, style="bold"), id="details-title")
                yield LogPane(max_lines=self._max_log_lines, defer_log=True, id="logpane")
        yield Static(id="status-line")
        yield DeployFooter()

    def on_mount(self) -> None:
        self.flow.on_journal_error = self._journal_failed
        self.title = "todobox-deploy"
        self.sub_title = for_display(f"{self.operator}@{self.host}" if self.host else self.operator)
        self.set_interval(1.0, self._update_status_line, name="status-clock")
        self._update_status_line()
        tree = self.query_one(ChecklistTree)
        tree.focus()
        node = self._first_node()
        self._show(node or self.checklist)
        self._refresh_state()  # a resumed session starts with confirmations carried over
        if node is not None:
            tree.select_id(node.id)
        if node is not None and node.phase in self.progress.outcomes:
            self.call_after_refresh(self.review_phase, node.phase)  # resumed: its evidence is waiting
        # The app calls after_first_frame once this screen's first frame is out; should that ever not
        # happen (a display that never comes), the details still come.
        self.set_timer(1.0, self.after_first_frame, name="first-frame-fallback")

    @property
    def painted(self) -> bool:
        """Whether a frame of this screen has been drawn (its footer, the last widget, was rendered)."""
        return self.query_one(DeployFooter).painted

    def after_first_frame(self) -> None:
        """What the first frame did not wait for: the details' Markdown and the log itself; then the
        startup is over."""
        self.first_frame_shown = True
        if self._rest_loaded or not self.is_mounted:
            return
        self._rest_loaded = True
        from textual.widgets import Markdown

        body = Markdown(self._details_text, id="details-body", open_links=False)
        self.query_one("#details", VerticalScroll).mount(body)
        self.query_one("#details-title").remove()
        self.log_pane.mount_log()
        self.call_after_refresh(end_startup)  # the interpreter's startup tuning (core/startup.py) ends here

    @property
    def details_body(self) -> Markdown | None:
        """The details' Markdown widget, once mounted (right after the first frame)."""
        from textual.widgets import Markdown

        return next(self.query("#details-body").results(Markdown), None)

    @property
    def details_shown(self) -> str:
        """The details' Markdown as shown ("" before it mounts)."""
        body = self.details_body
        return body.source if body is not None else ""

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Cancel is offered (and shown) only while a phase runs; running another only while none does."""
        if action == "cancel_phase":
            return self.flow.running is not None
        if action in ("run_phase", "run_next"):
            return self.flow.running is None  # one phase at a time
        return True

    def on_resize(self) -> None:
        if self.is_mounted:
            self._update_status_line()  # the header's compact form depends on the width

    def _journal_failed(self, message: str) -> None:
        """The audit trail failing must be loud, but must not kill the session (any thread)."""
        self.app.notify(  # thread-safe
            for_display(message), title="Journal write failed", severity="error", timeout=30, markup=False
        )

    # --- helpers -----------------------------------------------------------------------------------

    @property
    def checklist_tree(self) -> ChecklistTree:
        return self.query_one(ChecklistTree)

    @property
    def log_pane(self) -> LogPane:
        return self.query_one(LogPane)

    def _refresh_state(self) -> None:
        confirmed = {c.node_id for c in self.progress.phase_confirmations.values() if c.accepted}
        confirmed |= set(self.progress.item_confirmations)
        self.checklist_tree.update_state(self.progress.status, confirmed)
        self._show(self.selected)
        self._update_status_line()
        self.refresh_bindings()  # cancel shows only while a phase runs

    def _details(self, node: ChecklistNode) -> str:
        text = details_markdown(node, self.flow)
        if node.id in DOCS:
            text += "\n" + self._docs_for(node.id)
        return text

    def _show(self, node: ChecklistNode) -> None:
        self.selected = node
        text = self._details(node)
        if text != self._details_text:  # the same text again (a re-selection, a refresh) is not re-parsed
            self._details_text = text
            body = self.details_body
            if body is not None:  # else it mounts with this text
                body.update(text)
        if node.phase is not None:
            self.log_pane.show_phase(node.phase)

    # --- the docs of the commit ------------------------------------------------------------------------

    def _docs_key(self, item_id: str) -> DocsKey:
        ctx = self.flow.context
        return (item_id, ctx.commit_target, ctx.commit_before)

    def _docs_for(self, item_id: str) -> str:
        """The docs panel for ``item_id`` as read, or a placeholder while a worker reads it."""
        from todobox_deploy.tui.docs_view import loading_markdown

        key = self._docs_key(item_id)
        if key in self._docs:
            return self._docs[key]
        if key not in self._docs_reading:
            self._docs_reading.add(key)
            self.app.run_worker(
                partial(self._read_docs, key),
                name=f"docs {item_id}",
                group="docs",
                description=f"read {DOCS[item_id]}",
                thread=True,
                exit_on_error=False,
            )
        return loading_markdown(item_id)

    def _read_docs(self, key: DocsKey) -> None:
        """Worker thread: read the document (git locally, or SSH) for the commits in ``key``; only a
        message reaches the widgets. Never raises: a failure is the reading's problem, shown."""
        from todobox_deploy.engine.docs import CommitDoc, DocsReading, read_docs

        item_id, target, before = key
        session = self.flow.session
        try:
            if session is None:
                raise RuntimeError("no connection to the host in this session")
            context = dataclasses.replace(self.flow.context, commit_target=target, commit_before=before)
            reading = read_docs(item_id, session.config, context, session)
        except Exception as exc:
            problem = str(exc) if isinstance(exc, RuntimeError) else describe(exc)
            reading = DocsReading(item_id, CommitDoc(DOCS[item_id], "", None, None, problem), None)
        self.post_message(DocsRead(key, reading))

    @on(DocsRead)
    def _docs_read(self, message: DocsRead) -> None:
        from todobox_deploy.tui.docs_view import docs_markdown

        self._docs_reading.discard(message.key)
        self._docs[message.key] = docs_markdown(message.reading)
        self.flow.record("commit_docs_read", **message.reading.to_json())
        if self.selected.id == message.key[0]:
            self._show(self.selected)

    def _update_status_line(self) -> None:
        now = self.clock()
        compact = self.size.width < WIDE
        facts = header_facts(self.host, self.flow.context, self._session_start, now, compact=compact)
        self.query_one(DeployHeader).show(facts)
        running = self.progress.running
        started = self.flow.phase_started_at
        if running is not None and started is not None:
            phase = f"running {running} ({_elapsed((now - started).total_seconds())})"
        else:
            nxt = self.progress.next_phase()
            phase = f"next: {nxt}" if nxt else "all phases confirmed"
        text = f" operator {self.operator} │ {phase}"
        self.query_one("#status-line", Static).update(Text(for_display(text)))

    # --- tree events -------------------------------------------------------------------------------

    @on(Tree.NodeHighlighted, "#tree")
    @on(Tree.NodeSelected, "#tree")
    def _node_chosen(self, event: Tree.NodeHighlighted[ChecklistNode]) -> None:
        if event.node is not event.control.cursor_node:
            return  # stale: the cursor has moved on (e.g. the tree's first highlight, before select_id)
        if event.node.data is not None:
            self._show(event.node.data)

    @on(ChecklistTree.ConfirmRequested)
    def _confirm_requested(self, event: ChecklistTree.ConfirmRequested) -> None:
        self.confirm_item(event.item)

    # --- actions -----------------------------------------------------------------------------------

    def action_run_phase(self) -> None:
        node = self.selected
        if node.kind is not NodeKind.AUTOMATED or node.phase is None:
            self.notify("Select an automated phase (○) to run it.", severity="warning")
            return
        self.start_phase(node.phase)

    def action_run_next(self) -> None:
        phase = self.flow.next_phase()
        if phase is None:
            self.notify("All phases are confirmed: press s for the sign-off.")
            return
        node = self.checklist.find_phase(phase)
        if node is not None:
            self.checklist_tree.select_id(node.id)
        self.start_phase(phase)

    def action_confirm_item(self) -> None:
        node = self.selected
        if node.kind is NodeKind.MANUAL:
            self.confirm_item(node)
        elif node.phase is not None and node.phase in self.progress.outcomes:
            self.review_phase(node.phase)
        else:
            self.notify("Select a manual item (☐) or a finished phase to confirm.", severity="warning")

    def review_phase(self, phase_id: str) -> None:
        """Re-open the confirmation for a finished phase the operator has not confirmed yet."""
        outcome = self.progress.outcomes.get(phase_id)
        node = self.checklist.find_phase(phase_id)
        if self.progress.running == phase_id or outcome is None or node is None:
            return
        if self.progress.is_confirmed(phase_id):
            self.notify(f"Phase {phase_id!r} is already confirmed.")
            return
        from todobox_deploy.tui.failure import failure_options
        from todobox_deploy.tui.screens.confirm import ConfirmPhase

        errors = [
            line
            for line in self.log_pane.window(phase_id)
            if line.startswith((GUTTER["stderr"], GUTTER["error"]))
        ]
        options = failure_options(self.flow, phase_id, errors)
        self.app.push_screen(ConfirmPhase(node, outcome, options), partial(self._confirmed, phase_id))

    def action_cancel_phase(self) -> None:
        running = self.flow.running
        if running is None:
            self.notify("No phase is running.", severity="information")
            return
        if self.flow.request_cancel():
            self.notify(f"Cancelling {running}…", severity="warning")

    def action_follow_live(self) -> None:
        phase = self.progress.running or next(reversed(self.progress.outcomes), None)
        if phase is None:
            self.notify("Nothing has run yet.")
            return
        node = self.checklist.find_phase(phase)
        if node is not None:
            self.checklist_tree.select_id(node.id)
            self._show(node)
        self.log_pane.follow_tail()

    def show_signoff(self) -> None:
        """Push the read-only sign-off (not complete until every phase and item has its evidence)."""
        from todobox_deploy.tui.screens.signoff import SignOffScreen

        self.app.push_screen(SignOffScreen(self.flow))

    def action_bundle(self) -> None:
        from todobox_deploy.tui.bundle import write_bundle_in_background

        write_bundle_in_background(self, self.flow)

    def action_zoom_details(self) -> None:
        """Give the details panel (a document to read) the whole screen, or restore the layout."""
        self.toggle_class("-zoom-details")

    def action_log_search(self) -> None:
        self.log_pane.action_open_search()

    def action_log_follow(self) -> None:
        self.log_pane.action_toggle_follow()

    def on_unmount(self) -> None:
        cancel = self.flow.cancel_event
        if cancel is not None:
            cancel.set()  # never leave a phase thread running after the screen goes

    # --- running a phase ---------------------------------------------------------------------------

    def confirm_item(self, node: ChecklistNode) -> None:
        self.flow.toggle_item(node.id)
        self._refresh_state()

    def start_phase(self, phase_id: str, *, deliberate: bool = False) -> bool:
        """Start a phase in a thread worker, unless the gate refuses it; returns whether it started.

        A destructive step first asks for a second, deliberate confirmation (``deliberate``: given)."""
        from todobox_deploy.tui.screens.ask import AskScreen
        from todobox_deploy.tui.screens.gates import DESTRUCTIVE, DestructiveConfirm

        offer = self.flow.online_offer() if phase_id == "stop_app" else None
        ready = self.flow.refusal(phase_id) is None
        if offer is not None and ready:
            self.app.push_screen(
                AskScreen("Migrate online?", offer, yes="Migrate online", no="Stop first (checklist)"),
                partial(self._online_answered, phase_id),
            )
            return False
        destructive = phase_id in DESTRUCTIVE and self.flow.changes_host_now(phase_id)
        if destructive and not deliberate and ready and self.flow.can_run(phase_id):
            gate = DestructiveConfirm(phase_id, self.flow.title(phase_id))
            self.app.push_screen(gate, partial(self._deliberate, phase_id))
            return False
        try:
            if not self.flow.can_run(phase_id):
                self.flow.by_hand(phase_id)
                self._refresh_state()
                self.review_phase(phase_id)
                return False
            self.flow.begin(phase_id)
        except GateRefused as refused:
            self.notify(
                for_display(f"Refused: {refused}."), title="Phase gated", severity="warning", markup=False
            )
            return False
        self.log_pane.show_phase(phase_id)
        self.log_pane.follow_tail()
        open_items = self.flow.open_items_before(phase_id)
        if open_items:
            titles = "; ".join(n.title for n in open_items[:3]) + ("; …" if len(open_items) > 3 else "")
            message = f"Unconfirmed manual items before this phase: {titles}"
            self.notify(for_display(message), severity="warning", markup=False)
        self._refresh_state()
        self.app.run_worker(
            partial(self._phase_body, phase_id),
            name=phase_id,
            group="phase",
            description=f"phase {phase_id}",
            thread=True,
            exit_on_error=False,
        )
        return True

    def _online_answered(self, phase_id: str, answer: bool | None) -> None:
        self.flow.choose_online(bool(answer))
        self.start_phase(phase_id)

    def _deliberate(self, phase_id: str, answer: bool | None) -> None:
        if answer:
            self.start_phase(phase_id, deliberate=True)
        else:
            self.notify(f"{phase_id} not started.", severity="information")

    def _phase_body(self, phase_id: str) -> None:
        """Runs in a worker thread: the flow runs the phase; only messages reach the widgets."""
        from todobox_deploy.tui.sink import make_log_sink

        self.post_message(PhaseStarted(phase_id))
        cancel = self.flow.cancel_event
        outcome = self.flow.execute(phase_id, make_log_sink(self, phase_id, cancel), cancel)
        self.post_message(PhaseFinished(phase_id, outcome))

    @on(LogBatch)
    def _log_batch(self, message: LogBatch) -> None:
        try:
            self.log_pane.ingest(message.phase_id, message.stream, message.lines)
            if message.stream in HOST_STREAMS:  # common issues, matched live in what the host said
                cockpit_for(self.app).watch_output(message.phase_id, message.lines)
        finally:
            if message.ack is not None:
                message.ack()

    @on(PhaseStarted)
    def _phase_started(self, message: PhaseStarted) -> None:
        self._update_status_line()

    @on(PhaseFinished)
    def _phase_finished(self, message: PhaseFinished) -> None:
        phase_id, outcome = message.phase_id, message.outcome
        self.flow.crashed(phase_id, outcome.summary)  # a no-op unless the worker died outside the flow
        severity = SEVERITY.get(outcome.status, "error")
        title = for_display(f"{phase_id}: {outcome.status.value}")
        self.notify(for_display(outcome.summary), title=title, severity=severity, markup=False)  # type: ignore[arg-type]
        self._refresh_state()
        node = self.checklist.find_phase(phase_id)
        if node is not None:
            self.review_phase(phase_id)

    def _confirmed(self, phase_id: str, answer: Answer | None) -> None:
        from todobox_deploy.tui.failure import rollback_command
        from todobox_deploy.tui.screens.confirm import Answer
        from todobox_deploy.tui.screens.gates import RollbackOffer, SkipReason

        if answer is Answer.RETRY:
            self.start_phase(phase_id)
            return
        if answer is Answer.SKIP:
            self.app.push_screen(
                SkipReason(phase_id, self.flow.title(phase_id)), partial(self._skip, phase_id)
            )
            return
        if answer is Answer.ROLLBACK:
            command = rollback_command(self.flow)
            offer = RollbackOffer(self.flow.title(phase_id), command)
            self.app.push_screen(offer, partial(self._rollback_answered, phase_id, command))
            return
        c = self.flow.confirm(phase_id, answer is Answer.CONFIRM)
        self._refresh_state()
        if not c.accepted:
            return
        nxt = self.flow.next_phase()
        if nxt is None:
            self.notify("All phases confirmed. Press s to review and sign off.", title="Deploy complete")
            self.show_signoff()
            return
        node = self.checklist.find_phase(nxt)
        if node is not None:
            self.checklist_tree.select_id(node.id)

    def _skip(self, phase_id: str, reason: str | None) -> None:
        if reason is None:
            return
        try:
            self.flow.skip(phase_id, reason)
        except GateRefused as refused:
            self.notify(
                for_display(f"Refused: {refused}."), title="Not skipped", severity="warning", markup=False
            )
            return
        self._refresh_state()
        self.review_phase(phase_id)  # the skip is confirmed like any outcome

    def _rollback_answered(self, phase_id: str, command: str, quit_now: bool | None) -> None:
        if not quit_now:
            self.notify("Nothing launched. Press c on the phase to see its options again.")
            return
        self.flow.record("rollback_advised", phase=phase_id, command=command)
        self.app.exit(self.flow.exit_code(), message=f"To roll back, run:\n  {command}")
