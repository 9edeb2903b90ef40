"""A log pane that stays responsive on millions of lines (Toolong-style batching over Textual's ``Log``).

Worker threads never touch it: the screen hands it batches on the UI thread (``ingest``), which go to a
bounded per-phase window and, for the phase on view, a bounded pending deque (the full transcript is
the engine's, on disk). A timer drains that deque at ~30 Hz with a per-tick cap, one
``Log.write_lines`` call per tick.
"""

from __future__ import annotations

from collections import deque
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.reactive import reactive
from textual.strip import Strip
from textual.widgets import Input, Log, Static

from todobox_deploy.core.streams import Stream
from todobox_deploy.tui.text import for_display, lines_for_display
from todobox_deploy.tui.widgets.ordered_input import OrderedInput

GUTTER: dict[str, str] = {"stdout": "  ", "stderr": "! ", "error": "✘ ", "info": "» "}
"""A two-cell prefix marks each line's stream, so stderr/error lines stand out even without colour."""


class PhaseLog(Log):
    """``Log`` that colours lines by their stream gutter and highlights the current search match."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "phase-log--stderr",
        "phase-log--error",
        "phase-log--info",
        "phase-log--match",
    }
    DEFAULT_CSS = """
    PhaseLog > .phase-log--stderr { color: $warning; }
    PhaseLog > .phase-log--error { color: $error; text-style: bold; }
    PhaseLog > .phase-log--info { color: $text-muted; }
    PhaseLog > .phase-log--match { background: $accent 50%; text-style: bold; }
    """
    _CLASS_BY_GUTTER: ClassVar[dict[str, str]] = {
        "!": "phase-log--stderr",
        "✘": "phase-log--error",
        "»": "phase-log--info",
    }

    match_line: reactive[int | None] = reactive(None)

    def render_line(self, y: int) -> Strip:
        strip = super().render_line(y)
        index = self.scroll_offset.y + y
        lines = self.lines
        if index >= len(lines):
            return strip
        component = self._CLASS_BY_GUTTER.get(lines[index][:1])
        if index == self.match_line:
            component = "phase-log--match"
        if component is None:
            return strip
        style: Style = self.get_component_rich_style(component)
        return Strip(Segment.apply_style(strip, post_style=style), strip.cell_length)


class SearchInput(OrderedInput):
    """The log pane's search box; ``escape`` closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close search", id="log.search_close"),
    ]

    def action_close(self) -> None:
        self.value = ""
        self.display = False
        self.screen.query_one(PhaseLog).focus()


class LogPane(Vertical):
    """Per-phase logs: bounded in memory, batched to the screen, with follow mode and search."""

    DEFAULT_CSS = """
    LogPane { height: 1fr; }
    LogPane > #log-status { height: 1; width: 1fr; background: $panel; color: $text-muted; padding: 0 1; }
    LogPane > #log-status.-behind { background: $warning 30%; color: $text; }
    LogPane > PhaseLog { height: 1fr; border: none; }
    LogPane > SearchInput { display: none; height: 3; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f", "toggle_follow", "Follow", id="log.follow", tooltip="Auto-scroll to new lines"),
        Binding("slash", "open_search", "Search", id="log.search"),
        Binding("n", "next_match", "Next match", id="log.next_match", show=False),
        Binding("N", "previous_match", "Prev match", id="log.prev_match", show=False),
    ]

    follow: reactive[bool] = reactive(True)
    new_lines: reactive[int] = reactive(0)

    def __init__(
        self,
        *,
        max_lines: int = 10_000,
        tick_cap: int = 2_000,
        fps: float = 30.0,
        defer_log: bool = False,
        id: str | None = None,  # noqa: A002 - Textual's own keyword
    ) -> None:
        """``defer_log``: the log itself mounts with :meth:`mount_log` (the wizard's first frame shows the
        pane, its status line and an empty area without it); meanwhile lines wait in the window."""
        super().__init__(id=id)
        self.max_lines = max_lines
        self.tick_cap = tick_cap
        self.fps = fps
        self.viewing: str | None = None
        self.query_text = ""
        self._windows: dict[str, deque[str]] = {}
        self._pending: deque[str] = deque(maxlen=max_lines)
        self._skipped = 0  # lines that fell out of the pending deque before they could be painted
        self.ingested = 0
        # A little headroom so "lines not painted" markers survive next to a full window.
        self._log = PhaseLog(max_lines=max_lines + 16, auto_scroll=True, id="log")
        self._defer_log = defer_log

    def compose(self) -> ComposeResult:
        yield Static("", id="log-status")
        if not self._defer_log:
            yield self._log
        # The search box is mounted on the first ``/`` (new_search_input): the first frame does without it.

    def mount_log(self) -> None:
        """Mount the deferred log (a no-op once it is); what waited is painted from the next tick, which
        follows the tail as any tick does."""
        if not self._log.is_attached:
            self.mount(self._log, after="#log-status")

    def on_mount(self) -> None:
        self.set_interval(1 / self.fps, self.drain, name="log-drain")
        self._update_status()

    @property
    def log_widget(self) -> PhaseLog:
        """The log (before a deferred one mounts: its lines are empty, and the pane's methods wait)."""
        return self._log

    @property
    def log_ready(self) -> bool:
        return self._log.is_mounted

    # --- ingest (UI thread) -------------------------------------------------------------------------

    def ingest(self, phase_id: str, stream: Stream, lines: list[str]) -> None:
        """Accept one batch: keep it in the phase's window; queue it if on view.

        Lines are made inert first (``for_display``): an escape sequence, a ``\\r`` or a U+2028 from the
        host is shown, never obeyed, and cannot start a line of its own with a forged gutter."""
        gutter = GUTTER.get(stream, "  ")
        formatted = [gutter + line for line in lines_for_display(lines)]
        self.ingested += len(formatted)
        window = self._windows.get(phase_id)
        if window is None:
            window = self._windows[phase_id] = deque(maxlen=self.max_lines)
        window.extend(formatted)
        if self.viewing is None:
            self.viewing = phase_id
        if phase_id == self.viewing:
            self._queue(formatted)

    def _queue(self, lines: list[str] | deque[str]) -> None:
        overflow = len(self._pending) + len(lines) - self.max_lines
        if overflow > 0:
            self._skipped += min(overflow, len(self._pending) + len(lines))
        self._pending.extend(lines)

    @property
    def pending_count(self) -> int:
        """Lines accepted for the phase on view but not painted yet."""
        return len(self._pending)

    def window(self, phase_id: str) -> list[str]:
        """The in-memory tail of a phase's log (what the pane can show)."""
        return list(self._windows.get(phase_id, ()))

    def drain(self) -> int:
        """Write at most ``tick_cap`` pending lines in one call; returns how many were written."""
        log = self.log_widget
        pending = self._pending
        if not log.is_mounted:  # a deferred log: the lines wait
            return 0
        if not pending:
            if self.new_lines and log.is_vertical_scroll_end:
                self.new_lines = 0
            return 0
        if len(pending) <= self.tick_cap:
            batch = list(pending)
            pending.clear()
        else:
            batch = [pending.popleft() for _ in range(self.tick_cap)]
        if self._skipped:
            # Output outran the screen: say so rather than splice unrelated lines silently.
            batch.insert(0, f"{GUTTER['info']}… {self._skipped:,} lines not painted while catching up …")
            self._skipped = 0
        if self.follow and log.is_vertical_scroll_end:
            log.write_lines(batch, scroll_end=True)
            self.new_lines = 0
        else:
            log.write_lines(batch, scroll_end=False)
            self.new_lines += len(batch)
        return len(batch)

    def show_phase(self, phase_id: str | None) -> None:
        """Show another phase's log window (the running phase keeps ingesting meanwhile)."""
        if phase_id == self.viewing:
            return
        self.viewing = phase_id
        self._pending.clear()
        self._skipped = 0
        log = self.log_widget
        if log.is_mounted:  # else it is empty: nothing was written to it yet
            log.clear()
            log.match_line = None
        self.new_lines = 0
        if phase_id is not None:
            self._pending.extend(self._windows.get(phase_id, ()))
            self.drain()  # the rest follows on the next ticks
        if log.is_mounted:
            log.scroll_end(animate=False)
        self._update_status()

    def follow_tail(self) -> None:
        """Turn follow on and jump to the newest line."""
        self.follow = True
        self.new_lines = 0
        if self.log_widget.is_mounted:
            self.log_widget.match_line = None
            self.log_widget.scroll_end(animate=False, immediate=True)

    # --- follow and status ---------------------------------------------------------------------------

    def watch_follow(self) -> None:
        self._update_status()

    def watch_new_lines(self) -> None:
        self._update_status()

    def _update_status(self) -> None:
        if not self.is_mounted:
            return
        label = self.query_one("#log-status", Static)
        parts = [f"log: {self.viewing or '-'}", "follow: on" if self.follow else "follow: off (f)"]
        if self.new_lines:
            parts.append(f"{self.new_lines} new lines (f/end to follow)")
        if self.query_text:
            log = self.log_widget
            where = f"line {log.match_line + 1}" if log.match_line is not None else "no match"
            parts.append(f"/{self.query_text}: {where}")
        label.update(Text(for_display(" │ ".join(parts))))  # the search text is no markup either
        label.set_class(bool(self.new_lines), "-behind")

    def action_toggle_follow(self) -> None:
        if self.follow:
            self.follow = False
        else:
            self.follow_tail()

    # --- search --------------------------------------------------------------------------------------

    def new_search_input(self) -> SearchInput:
        """The search box, made on the first ``/``."""
        placeholder = "Search this phase's log (enter: find, escape: close)"
        return SearchInput(placeholder=placeholder, id="log-search")

    def action_open_search(self) -> None:
        box = next(iter(self.query(SearchInput)), None)
        if box is None:
            box = self.new_search_input()
            self.mount(box)
        box.display = True
        self.call_after_refresh(box.focus)  # mounted by then

    @on(Input.Submitted, "#log-search")
    def _search_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.query_text = event.value.strip()
        self.query_one(SearchInput).display = False
        log = self.log_widget
        log.focus()
        self.search(self.query_text)

    def search(self, text: str, *, forward: bool = True, start: int | None = None) -> int | None:
        """Jump to the next (or previous) line containing ``text`` (case-insensitive); None if absent."""
        self.query_text = text
        log = self.log_widget
        needle = text.lower()
        lines = log.lines
        if not needle or not lines:
            log.match_line = None
            self._update_status()
            return None
        current = log.match_line
        if start is None:
            start = (current + (1 if forward else -1)) if current is not None else log.scroll_offset.y
        count = len(lines)
        order = range(count) if forward else range(count - 1, -1, -1)
        found = None
        for step in order:
            index = (start + step) % count if forward else (start - (count - 1 - step)) % count
            if needle in lines[index].lower():
                found = index
                break
        log.match_line = found
        if found is not None:
            self.follow = False
            log.scroll_to(y=max(0, found - log.size.height // 2), animate=False, immediate=True)
        log.refresh()
        self._update_status()
        return found

    def action_next_match(self) -> None:
        if self.query_text:
            self.search(self.query_text, forward=True)

    def action_previous_match(self) -> None:
        if self.query_text:
            self.search(self.query_text, forward=False)
