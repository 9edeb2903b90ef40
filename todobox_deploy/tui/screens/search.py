"""Session-wide search: every phase's full transcript (and the in-memory logs that have none), results
listed by phase as they arrive; enter jumps to one. A transcript excerpt shows a line that is no longer in
the log pane's in-memory window."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

from todobox_deploy.tui.session_search import Hit, SearchSource, excerpt, search_sources
from todobox_deploy.tui.text import for_display, lines_for_display
from todobox_deploy.tui.widgets.log_pane import PhaseLog
from todobox_deploy.tui.widgets.ordered_input import OrderedInput

MAX_SHOWN = 2_000
OPTIONS_PER_TICK = 25


class SearchHits(Message):
    """A batch of hits of search ``run`` in one source (from the search thread)."""

    def __init__(self, run: int, source: str, hits: list[Hit]) -> None:
        super().__init__()
        self.run = run
        self.source = source
        self.hits = hits


class SearchDone(Message):
    def __init__(self, run: int, total: int, seconds: float) -> None:
        super().__init__()
        self.run = run
        self.total = total
        self.seconds = seconds


class SessionSearchScreen(Screen[Hit | None]):
    """Type, enter: every phase is searched; up/down and enter on a result jumps there; escape closes.

    A whole screen, not a dialog over the wizard: a live log under a dialog is composited every frame."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close", id="search.close"),
        Binding("ctrl+f", "focus_query", "New search", id="search.query", show=False),
    ]
    DEFAULT_CSS = """
    SessionSearchScreen > Vertical { border: round $primary; background: $surface; padding: 0 1; }
    SessionSearchScreen #search-state { height: 1; color: $text-muted; }
    SessionSearchScreen #search-state.-filtering { color: $text; background: $accent 30%; }
    SessionSearchScreen OptionList { height: 1fr; }
    """

    def __init__(
        self, sources: Sequence[SearchSource], *, query: str = "", limit_per_source: int = 500
    ) -> None:
        super().__init__()
        self.sources = tuple(sources)
        self.titles = {s.id: s.title for s in self.sources}
        self.query_text = query
        self.limit_per_source = limit_per_source
        self.hits: list[Hit] = []
        self.total = 0
        self._run = 0
        self._cancel: threading.Event | None = None
        self._started = 0.0
        self.first_result_seconds: float | None = None
        self.done = False
        self._group_of: dict[str, int] = {}
        self._waiting: deque[Option] = deque()

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text("Search the whole session: every phase's transcript, the checks, the tails"))
            yield OrderedInput(
                value=self.query_text, placeholder="text to find (case-insensitive)", id="search-query"
            )
            yield Label("", id="search-state")
            yield OptionList(id="search-results")

    def on_mount(self) -> None:
        self.query_one(Input).focus()
        self.set_interval(1 / 30, self._show_waiting, name="search-results")
        if self.query_text:
            self.start(self.query_text)

    # --- searching -----------------------------------------------------------------------------------

    def start(self, text: str) -> None:
        """Search every source for ``text`` in a worker thread (a new search cancels the last)."""
        if self._cancel is not None:
            self._cancel.set()
        self._run += 1
        self.query_text = text
        self.hits.clear()
        self._group_of.clear()
        self._waiting.clear()
        self.total = 0
        self.done = False
        self.first_result_seconds = None
        self.query_one(OptionList).clear_options()
        self._started = time.perf_counter()
        self._cancel = threading.Event()
        self._update_state()
        if text:
            self._search(self._run, text, self._cancel)

    @work(thread=True, group="session-search", exit_on_error=False, description="session search")
    def _search(self, run: int, text: str, cancel: threading.Event) -> None:
        started = time.perf_counter()
        total = search_sources(
            self.sources,
            text,
            lambda source, hits: self.post_message(SearchHits(run, source, hits)),
            limit_per_source=self.limit_per_source,
            cancel=cancel,
        )
        self.post_message(SearchDone(run, total, time.perf_counter() - started))

    @on(SearchHits)
    def _hits(self, message: SearchHits) -> None:
        if message.run != self._run:
            return
        if self.first_result_seconds is None:
            self.first_result_seconds = time.perf_counter() - self._started
        self.total += len(message.hits)
        room = MAX_SHOWN - len(self.hits)
        for hit in message.hits[: max(0, room)]:
            if hit.source not in self._group_of:
                self._group_of[hit.source] = len(self._group_of)
                title = f"── {self.titles.get(hit.source, hit.source)} ──"
                self._waiting.append(Option(Text(for_display(title), style="bold"), disabled=True))
            line = hit.text if len(hit.text) <= 300 else hit.text[:299] + "…"
            self._waiting.append(
                Option(Text(for_display(f"{hit.line_no:>7}  {line}")), id=f"hit-{len(self.hits)}")
            )
            self.hits.append(hit)
        if self._waiting and self.query_one(OptionList).option_count == 0:
            self._show_waiting()  # the first ones at once; the rest paced (measuring an option costs)
        self._update_state()

    def _show_waiting(self) -> None:
        """Add at most OPTIONS_PER_TICK waiting results to the list: a flood never stalls the keys."""
        if not self._waiting:
            return
        batch = [self._waiting.popleft() for _ in range(min(OPTIONS_PER_TICK, len(self._waiting)))]
        self.query_one(OptionList).add_options(batch)

    @on(SearchDone)
    def _done(self, message: SearchDone) -> None:
        if message.run == self._run:
            self.done = True
            self._update_state(message.seconds)

    def _update_state(self, seconds: float | None = None) -> None:
        label = self.query_one("#search-state", Label)
        if not self.query_text:
            label.update("type a search and press enter")
            label.set_class(False, "-filtering")
            return
        where = len(self._group_of)
        state = f"searched in {seconds:.2f} s" if seconds is not None else "searching…"
        more = f" (showing {MAX_SHOWN})" if self.total > MAX_SHOWN else ""
        text = f"filter /{self.query_text}/: {self.total} lines in {where} logs{more} · {state}"
        label.update(Text(for_display(text)))
        label.set_class(True, "-filtering")

    # --- keys ----------------------------------------------------------------------------------------

    @on(Input.Submitted, "#search-query")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.start(event.value.strip())
        self.query_one(OptionList).focus()

    @on(OptionList.OptionSelected, "#search-results")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        option_id = event.option.id or ""
        if option_id.startswith("hit-"):
            self.choose(int(option_id[4:]))

    def choose(self, index: int) -> None:
        """Close with hit ``index`` (the caller jumps to it)."""
        self._stop()
        self.dismiss(self.hits[index])

    def action_focus_query(self) -> None:
        self.query_one(Input).focus()

    def action_close(self) -> None:
        self._stop()
        self.dismiss(None)

    def _stop(self) -> None:
        if self._cancel is not None:
            self._cancel.set()


class TranscriptScreen(ModalScreen[None]):
    """A read-only excerpt of a phase's transcript around one line (escape closes)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Close", id="transcript.close")
    ]
    DEFAULT_CSS = """
    TranscriptScreen { align: center middle; }
    TranscriptScreen > Vertical { width: 95%; height: 90%; border: round $primary; background: $surface; }
    TranscriptScreen #transcript-title { height: 1; padding: 0 1; color: $text-muted; }
    TranscriptScreen PhaseLog { height: 1fr; }
    """

    def __init__(self, path: Path, hit: Hit) -> None:
        super().__init__()
        self.path = path
        self.hit = hit

    def compose(self) -> ComposeResult:
        with Vertical():
            title = f"{self.path.name}: line {self.hit.line_no} (older than the log pane keeps in memory)"
            yield Label(Text(for_display(title)), id="transcript-title")
            yield PhaseLog(id="transcript-log", auto_scroll=False)

    def on_mount(self) -> None:
        log = self.query_one(PhaseLog)
        offset = self.hit.offset or 0
        lines, index = excerpt(self.path, offset)
        log.write_lines(lines_for_display(lines), scroll_end=False)
        log.match_line = index
        log.focus()
        self.call_after_refresh(
            lambda: log.scroll_to(y=max(0, index - log.size.height // 2), animate=False, immediate=True)
        )
