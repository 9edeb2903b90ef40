"""The monitoring screen: live tails of the app's logs, MySQL's error log and the unit's journal, tabbed.

Each tail is a thread worker running one long command over the session's SSH connection (``tail -F``,
``journalctl -f``); it posts LogBatch messages with backpressure, like a phase, into its own bounded
:class:`TailPane`. The workers stop when the app closes (their cancel event ends the remote command).
The screen is installed once and kept, so the tails (and the common-issue watch on them) go on while the
operator is back in the wizard.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Header, Static, TabbedContent, TabPane
from textual.worker import get_current_worker

from todobox_deploy.engine.monitor import TailSpec, resolve, run_tail, tail_specs
from todobox_deploy.tui.messages import LogBatch
from todobox_deploy.tui.sink import make_log_sink
from todobox_deploy.tui.text import for_display
from todobox_deploy.tui.widgets.footer import DeployFooter
from todobox_deploy.tui.widgets.tail_pane import TailPane

if TYPE_CHECKING:
    from todobox_deploy.engine.session import DeploySession

LineWatcher = Callable[[str, list[str]], None]


class TailState(Message):
    """A tail's state changed (resolved, started, ended); ``text`` may quote the host."""

    def __init__(self, tail_id: str, text: str, *, stopped: bool = False) -> None:
        super().__init__()
        self.tail_id = tail_id
        self.text = text
        self.stopped = stopped


class MonitorScreen(Screen[None]):
    """Tabs of live tails; escape (or m) goes back, [ and ] change tabs."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back", id="monitor.back"),
        Binding("right_square_bracket", "tab(1)", "Next tab", id="monitor.next_tab", key_display="]"),
        Binding("left_square_bracket", "tab(-1)", "Prev tab", id="monitor.prev_tab", key_display="["),
    ]
    DEFAULT_CSS = """
    MonitorScreen #monitor-where { height: auto; max-height: 5; padding: 0 1; color: $text-muted; }
    MonitorScreen TabbedContent { height: 1fr; }
    MonitorScreen TabPane { padding: 0; }
    """

    def __init__(
        self,
        session: DeploySession | None,
        *,
        on_lines: LineWatcher | None = None,
        max_lines: int = 5_000,
    ) -> None:
        super().__init__()
        self.session = session
        self.on_lines = on_lines
        self.max_lines = max_lines
        self.specs: tuple[TailSpec, ...] = tail_specs(session.config) if session is not None else ()
        self.notes: dict[str, str] = {}
        self._panes: dict[str, TailPane] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        where = "No SSH session: nothing to tail." if self.session is None else "Finding the logs…"
        yield Static(Text(where), id="monitor-where")
        with TabbedContent(id="monitor-tabs"):
            for spec in self.specs:
                with TabPane(Content(spec.title), id=f"tab-{spec.id}"):
                    yield TailPane(spec.id, max_lines=self.max_lines, id=f"tail-{spec.id}")
        yield DeployFooter()

    def on_mount(self) -> None:
        self.title = "todobox-deploy · monitoring"
        for spec in self.specs:
            self.run_worker(
                partial(self._follow, spec),
                name=spec.id,
                group="monitor",
                description=f"tail {spec.id}",
                thread=True,
                exit_on_error=False,
            )
        self._focus_active()

    # --- panes -------------------------------------------------------------------------------------

    def pane(self, tail_id: str) -> TailPane | None:
        """A tail's pane (looked up once: a batch arrives many times a second)."""
        if not self._panes and self.is_mounted:
            self._panes = {p.tail_id: p for p in self.query(TailPane)}
        return self._panes.get(tail_id)

    @property
    def panes(self) -> list[TailPane]:
        return list(self.query(TailPane))

    @property
    def active_pane(self) -> TailPane | None:
        active = self.query_one(TabbedContent).active
        return self.pane(active.removeprefix("tab-")) if active else None

    def show_tail(self, tail_id: str) -> TailPane | None:
        """Bring a tail's tab to the front."""
        if self.pane(tail_id) is None:
            return None
        self.query_one(TabbedContent).active = f"tab-{tail_id}"
        self._focus_active()
        return self.pane(tail_id)

    def _focus_active(self) -> None:
        """Only the tab in front paints (the others keep their windows); it gets the focus."""
        pane = self.active_pane
        for other in self.panes:
            if other is not pane:
                other.pause()
        if pane is not None:
            pane.resume()
            self.call_after_refresh(pane.log_widget.focus)

    def on_screen_suspend(self) -> None:
        for pane in self.panes:
            pane.pause()

    def on_screen_resume(self) -> None:
        self._focus_active()

    def action_tab(self, step: int) -> None:
        if not self.specs:
            return
        ids = [s.id for s in self.specs]
        pane = self.active_pane
        at = ids.index(pane.tail_id) if pane is not None else 0
        self.show_tail(ids[(at + step) % len(ids)])

    @on(TabbedContent.TabActivated)
    def _tab_activated(self) -> None:
        self._focus_active()

    # --- the tails (worker threads) -----------------------------------------------------------------

    def _follow(self, spec: TailSpec) -> None:
        session = self.session
        if session is None:
            return
        cancel = get_current_worker().cancelled_event
        resolved, note = resolve(session, spec, self.specs)
        argv = resolved.argv()
        if argv is None:
            self.post_message(TailState(spec.id, note, stopped=True))
            return
        self.post_message(TailState(spec.id, f"following: {shlex.join(argv)}  ({note})"))
        ended = run_tail(session, resolved, make_log_sink(self, spec.id, cancel), cancel)
        self.post_message(TailState(spec.id, f"{shlex.join(argv)}: {ended}", stopped=True))

    @on(TailState)
    def _tail_state(self, message: TailState) -> None:
        self.notes[message.tail_id] = message.text
        pane = self.pane(message.tail_id)
        if pane is not None:
            pane.set_state(message.text, stopped=message.stopped)
        where = " │ ".join(f"{for_display(note)}" for note in self.notes.values())
        self.query_one("#monitor-where", Static).update(Text(where))

    @on(LogBatch)
    def _tail_batch(self, message: LogBatch) -> None:
        message.stop()
        try:
            pane = self.pane(message.phase_id)
            if pane is not None:
                pane.ingest(message.phase_id, message.stream, message.lines)
            if self.on_lines is not None:
                self.on_lines(message.phase_id, message.lines)
        finally:
            if message.ack is not None:
                message.ack()
