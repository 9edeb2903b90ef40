"""A monitoring tail's pane: the phase log's LogPane (bounded, batched, follow/scroll/search) for one tail,
with a line saying what is followed and how it stands."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.css.query import NoMatches
from textual.widgets import Label, Static

from todobox_deploy.tui.text import for_display
from todobox_deploy.tui.widgets.log_pane import LogPane, PhaseLog, SearchInput


class TailSearchInput(SearchInput):
    """The search box of one tail: ``escape`` goes back to this tail's log (several panes share a screen)."""

    def action_close(self) -> None:
        self.value = ""
        self.display = False
        if self.parent is not None:
            self.parent.query_one(PhaseLog).focus()


class TailPane(LogPane):
    """One tail (``tail_id``): its state line, then the log pane."""

    DEFAULT_CSS = """
    TailPane > #tail-state { height: 1; width: 1fr; color: $text-muted; padding: 0 1; }
    TailPane > #tail-state.-stopped { color: $warning; }
    """

    def __init__(self, tail_id: str, *, max_lines: int = 5_000, id: str | None = None) -> None:  # noqa: A002
        super().__init__(max_lines=max_lines, id=id)
        self.tail_id = tail_id
        self.viewing = tail_id
        self.state = "starting"
        self.paused = False
        """True while out of sight (another tab, another screen): lines go to the window, none is painted."""

    def compose(self) -> ComposeResult:
        yield Label("", id="tail-state")
        yield Static("", id="log-status")
        yield self.log_widget

    def new_search_input(self) -> SearchInput:
        return TailSearchInput(placeholder="Search this log (enter: find, escape: close)", id="log-search")

    def drain(self) -> int:
        """As LogPane's, but nothing while paused; a tick while the app tears the screen down does nothing."""
        if self.paused:
            return 0
        try:
            return super().drain()
        except NoMatches:
            return 0

    def pause(self) -> None:
        """Out of sight: stop painting (the window keeps the newest lines, bounded)."""
        self.paused = True

    def resume(self) -> None:
        """In sight again: repaint from the window, then follow as before."""
        if not self.paused:
            return
        self.paused = False
        follow = self.follow
        self.viewing = None
        self.show_phase(self.tail_id)
        if follow:
            self.follow_tail()

    def set_state(self, text: str, *, stopped: bool = False) -> None:
        """What the tail follows and how it stands (shown inert: paths and errors come from the host)."""
        self.state = text
        label = self.query_one("#tail-state", Label)
        label.update(Text(for_display(text)))
        label.set_class(stopped, "-stopped")
