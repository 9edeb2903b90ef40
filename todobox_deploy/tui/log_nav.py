"""Moving around a :class:`LogPane` from outside: show a line, find the next error, place a search hit."""

from __future__ import annotations

from pathlib import Path

from todobox_deploy.engine.issues import issue_in
from todobox_deploy.tui.session_search import Hit, lines_after, pane_content
from todobox_deploy.tui.widgets.log_pane import LogPane

ERROR_GUTTERS = ("!", "✘")
NEAR = 500


def settle(pane: LogPane) -> None:
    """Paint every pending line now, so line indexes are final."""
    while pane.pending_count and pane.drain():
        pass


def show_line(pane: LogPane, index: int, query: str | None = None) -> None:
    """Highlight line ``index`` and scroll it to the middle; follow stops (the status line says so).

    With ``query`` the pane's search is set to it (its status shows ``/query``, and n/N go on from here)."""
    log = pane.log_widget
    if query:
        pane.search(query, start=index)
        if log.match_line == index:
            return
    pane.follow = False
    log.match_line = index
    log.scroll_to(y=max(0, index - log.size.height // 2), animate=False, immediate=True)
    log.refresh()


def is_error_line(source: str, line: str) -> bool:
    """A stderr or error line (by its gutter), or one that shows a common issue."""
    return line[:1] in ERROR_GUTTERS or issue_in(source, pane_content(line)) is not None


def next_error(pane: LogPane, *, forward: bool = True) -> int | None:
    """Move to the next (or previous) error line after the highlighted one (wrapping); None if none."""
    settle(pane)
    log = pane.log_widget
    lines = log.lines
    count = len(lines)
    if not count:
        return None
    source = pane.viewing or ""
    current = log.match_line
    if current is None:
        current = log.scroll_offset.y - 1 if forward else log.scroll_offset.y + log.size.height
    step = 1 if forward else -1
    for k in range(1, count + 1):
        index = (current + step * k) % count
        if is_error_line(source, lines[index]):
            show_line(pane, index)
            return index
    return None


def locate(pane: LogPane, hit: Hit, path: Path | None) -> int | None:
    """The index in the pane of a search hit (the pane showing the hit's source), or None when the line
    is no longer in the pane's in-memory window (it is then only in the transcript)."""
    settle(pane)
    lines = pane.log_widget.lines
    if not lines:
        return None
    if hit.offset is None or path is None:
        guess = hit.line_no - 1
    else:
        try:
            guess = len(lines) - 1 - lines_after(path, hit.offset)
        except OSError:
            return None
    for distance in range(NEAR + 1):
        for index in (guess - distance, guess + distance) if distance else (guess,):
            if 0 <= index < len(lines) and pane_content(lines[index]) == hit.content:
                return index
    return None
