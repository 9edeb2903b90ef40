"""The cockpit's state and actions for one session (see :mod:`todobox_deploy.tui.cockpit`): the issue
watch, the monitoring screen, the runnable checks, session search and "next error"."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING

from textual.worker import get_current_worker

from todobox_deploy.engine.issues import IssueMatch, IssueWatch
from todobox_deploy.engine.quickref import QuickRef, quickrefs, run_quickref
from todobox_deploy.tui.cockpit import QUICKREF
from todobox_deploy.tui.log_nav import locate, next_error, settle, show_line
from todobox_deploy.tui.screens.monitor import MonitorScreen
from todobox_deploy.tui.screens.search import SessionSearchScreen, TranscriptScreen
from todobox_deploy.tui.session_search import Hit, SearchSource, pane_content
from todobox_deploy.tui.sink import make_log_sink
from todobox_deploy.tui.text import for_display
from todobox_deploy.tui.widgets.log_pane import LogPane

if TYPE_CHECKING:
    from todobox_deploy.config import DeployConfig
    from todobox_deploy.engine.flow import DeployFlow
    from todobox_deploy.tui.app import DeployApp
    from todobox_deploy.tui.screens.wizard import WizardScreen

WHAT_I_DOES = {
    "unknown_column": "run flask db current and SHOW COLUMNS",
    "wont_start": "show the line in its log",
    "slow_db": "run SHOW FULL PROCESSLIST",
    "connection_refused": "run a database connection check",
}


class Cockpit:
    """The cockpit's state for one session: the issue watch, the monitoring screen, the last search."""

    def __init__(self, app: DeployApp) -> None:
        self.app = app
        self.watch = IssueWatch()
        self.last_issue: IssueMatch | None = None
        self.monitor: MonitorScreen | None = None
        self.search_query = ""
        self._sources: dict[str, SearchSource] = {}

    @property
    def flow(self) -> DeployFlow:
        return self.app.flow

    @property
    def wizard(self) -> WizardScreen | None:
        return self.app.wizard

    # --- common issues -------------------------------------------------------------------------------

    def watch_output(self, source: str, lines: list[str]) -> None:
        """Lines of a phase or a tail (UI thread): each row first seen is journaled and notified."""
        for match in self.watch.feed(source, lines):
            self.flow.issue_matched(match.row.key, match.source, match.line)
            self.last_issue = match
            row = match.row
            line = match.line if len(match.line) <= 160 else match.line[:159] + "…"
            parts = (
                f"{source}: {line}",
                f"→ {row.action}",
                f"Press i: {WHAT_I_DOES.get(row.key, 'act on it')}.",
            )
            self.app.notify(
                "\n".join(for_display(part) for part in parts),
                title=for_display(f"Common issue: {row.title}"),
                severity="warning",
                timeout=15,
                markup=False,
            )

    def issue_action(self) -> None:
        """The last matched row's action (its checks, or the line in its log), and the row itself in the
        details panel."""
        match = self.last_issue
        if match is None:
            self.app.notify("No common issue has matched yet.")
            return
        config = self._config_or_none()
        refs = quickrefs(match.row.node_id, config) if config is not None else ()
        if match.row.key != "wont_start" and refs:
            self.run_checks(refs)
        else:
            self.show_match(match)
        self.show_row(match.row.node_id)

    def show_row(self, node_id: str) -> None:
        """Select a checklist node in the wizard (its details panel shows it)."""
        wizard = self.wizard
        if wizard is not None:
            wizard.checklist_tree.select_id(node_id)

    def show_match(self, match: IssueMatch) -> None:
        """The matched line in its log: the tail's tab, or the phase's log in the wizard."""
        monitor = self.monitor
        pane: LogPane | None
        if monitor is not None and monitor.pane(match.source) is not None:
            self.open_monitor()
            pane = monitor.show_tail(match.source)
        else:
            pane = self._wizard_pane(match.source)
        if pane is None:
            return
        settle(pane)
        wanted = for_display(match.line)
        lines = pane.log_widget.lines
        index = next((i for i in range(len(lines) - 1, -1, -1) if pane_content(lines[i]) == wanted), None)
        if index is None:
            self.app.notify("That line has left the in-memory log: ctrl+f searches the transcripts.")
            return
        show_line(pane, index)

    # --- monitoring ----------------------------------------------------------------------------------

    def toggle_monitor(self) -> None:
        if isinstance(self.app.screen, MonitorScreen):
            self.app.pop_screen()
        else:
            self.open_monitor()

    def open_monitor(self) -> MonitorScreen:
        """The monitoring screen in front (made and installed on first use: its tails then keep running)."""
        if self.monitor is None:
            self.monitor = MonitorScreen(self.flow.session, on_lines=self.watch_output)
            self.app.install_screen(self.monitor, name="monitor")
        if self.app.screen is not self.monitor:
            self.app.push_screen(self.monitor)
        return self.monitor

    # --- the quick reference, runnable ---------------------------------------------------------------

    def _config_or_none(self) -> DeployConfig | None:
        session = self.flow.session
        return session.config if session is not None else None

    def run_check(self) -> None:
        """``x``: run what the selected checklist node offers (reference commands, issue checks, tails)."""
        wizard = self.wizard
        if wizard is None or self.app.screen is not wizard:
            self.app.notify(
                "Select a Quick Reference entry in the checklist, then press x.", severity="warning"
            )
            return
        node = wizard.selected
        config = self._config_or_none()
        refs = quickrefs(node.id, config) if config is not None else ()
        if config is None:
            self.app.notify("No SSH session: nothing can run on the host.", severity="warning")
        elif not refs:
            self.app.notify(
                for_display(
                    f"{node.title}: nothing to run. x runs the Verification Commands Quick Reference, "
                    "the Common Issues rows and Logs to Watch."
                ),
                severity="warning",
                markup=False,
            )
        elif refs[0].kind == "monitor":
            self.open_monitor()
        else:
            self.run_checks(refs)

    def run_checks(self, refs: Sequence[QuickRef]) -> None:
        """Run read-only checks (no gate) in a thread; their output goes to the log pane's quickref log."""
        wizard = self.wizard
        if wizard is None or self.flow.session is None:
            self.app.notify("No SSH session: nothing can run on the host.", severity="warning")
            return
        if isinstance(self.app.screen, MonitorScreen):
            self.app.pop_screen()
        pane = wizard.log_pane
        pane.show_phase(QUICKREF)
        pane.follow_tail()
        self.app.run_worker(
            partial(self._checks, tuple(refs), wizard),
            name=QUICKREF,
            group=QUICKREF,
            description="quick reference",
            thread=True,
            exclusive=True,
            exit_on_error=False,
        )

    def _checks(self, refs: tuple[QuickRef, ...], wizard: WizardScreen) -> None:
        session = self.flow.session
        assert session is not None
        cancel = get_current_worker().cancelled_event
        sink = make_log_sink(wizard, QUICKREF, cancel)
        for ref in refs:
            code, ran = run_quickref(session, ref, sink, cancel)
            self.flow.record("quickref_run", id=ref.id, command=ran, exit_code=code)
            verdict = "ran" if code == 0 else ("no exit code" if code is None else f"failed (exit {code})")
            self.app.notify(  # thread-safe
                for_display(f"{ref.command}: {verdict}"),
                title="Check",
                severity="information" if code == 0 else "warning",
                markup=False,
            )

    # --- search and navigation -----------------------------------------------------------------------

    def visible_pane(self) -> LogPane | None:
        screen = self.app.screen
        if isinstance(screen, MonitorScreen):
            return screen.active_pane
        wizard = self.wizard
        return wizard.log_pane if wizard is not None and screen is wizard else None

    def next_error(self) -> None:
        pane = self.visible_pane()
        if pane is None:
            return
        if next_error(pane) is None:
            self.app.notify("No error line in this log.")

    def sources(self) -> list[SearchSource]:
        """Every log of the session in order: phases (their transcripts when on disk), checks, tails."""
        flow, wizard = self.flow, self.wizard
        pane = wizard.log_pane if wizard is not None else None
        found: list[SearchSource] = []
        for phase in flow.order:
            title = f"{flow.title(phase)} ({phase})"
            path = flow.transcript_dir / f"{phase}.log" if flow.transcript_dir is not None else None
            if path is not None and path.exists():
                found.append(SearchSource(phase, title, "phase", path=path))
            elif pane is not None and pane.window(phase):
                found.append(SearchSource(phase, title, "phase", lines=tuple(pane.window(phase))))
        if pane is not None and pane.window(QUICKREF):
            found.append(
                SearchSource(
                    QUICKREF, "Quick reference checks", "quickref", lines=tuple(pane.window(QUICKREF))
                )
            )
        if self.monitor is not None:
            for spec in self.monitor.specs:
                tail = self.monitor.pane(spec.id)
                if tail is not None and tail.window(spec.id):
                    found.append(SearchSource(spec.id, spec.title, "tail", lines=tuple(tail.window(spec.id))))
        return found

    def open_search(self) -> None:
        if isinstance(self.app.screen, SessionSearchScreen):
            return
        sources = self.sources()
        self._sources = {s.id: s for s in sources}
        pane = self.visible_pane()
        query = (pane.query_text if pane is not None else "") or self.search_query
        screen = SessionSearchScreen(sources, query=query)
        self.app.push_screen(screen, partial(self._chosen, screen))

    def _chosen(self, screen: SessionSearchScreen, hit: Hit | None) -> None:
        self.search_query = screen.query_text
        if hit is not None:
            self.jump(hit)

    def jump(self, hit: Hit) -> None:
        """Show a search hit: its phase's (or tail's) log scrolled to the line, else a transcript excerpt."""
        source = self._sources.get(hit.source)
        if source is None:
            return
        pane: LogPane | None
        if source.kind == "tail" and self.monitor is not None:
            self.open_monitor()
            pane = self.monitor.show_tail(hit.source)
        else:
            pane = self._wizard_pane(hit.source)
        index = locate(pane, hit, source.path) if pane is not None else None
        if index is not None and pane is not None:
            show_line(pane, index, self.search_query)
        elif source.path is not None:
            self.app.push_screen(TranscriptScreen(source.path, hit))
        else:
            self.app.notify("That line has left the in-memory log.")

    def _wizard_pane(self, source: str) -> LogPane | None:
        """The wizard's log pane showing ``source`` (a phase or the checks), the wizard in front."""
        wizard = self.wizard
        if wizard is None:
            return None
        if isinstance(self.app.screen, MonitorScreen):
            self.app.pop_screen()
        node = self.flow.node(source)
        if node is not None:
            self.show_row(node.id)
        wizard.log_pane.show_phase(source)
        return wizard.log_pane
