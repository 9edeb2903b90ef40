"""The key hints at the bottom: one widget, the essential keys first.

Textual's ``Footer`` is a container of one widget per hint and recomposes all of them whenever the focused
widget's bindings change; before the wizard's first frame that was two recomposes and about 25 ms
(tests/bench_first_frame.py). This footer draws the same hints as one line of text and only repaints. In a
narrow terminal the hints that do not fit are cut off at the right, so ``^q Quit``, ``s Sign-off`` and
``? Keys`` come first; the command palette's hint sits at the right edge only when everything fits.
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple

from rich.text import Text
from textual import events
from textual.screen import Screen
from textual.widget import Widget

ESSENTIAL = ("quit", "show_signoff", "show_keys")
"""Actions whose key hint is always shown, in this order, before every other hint."""


class Hint(NamedTuple):
    key: str  # what a click simulates
    display: str  # how the key is shown, e.g. ^q
    description: str
    action: str
    enabled: bool
    tooltip: str = ""  # shown while the pointer rests on the hint


class DeployFooter(Widget, can_focus=False):
    """The active screen's key hints in one line; a click on a hint presses its key."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "deploy-footer--key",
        "deploy-footer--description",
        "deploy-footer--disabled",
    }
    DEFAULT_CSS = """
    DeployFooter {
        dock: bottom;
        height: 1;
        color: $footer-foreground;
        background: $footer-background;
    }
    DeployFooter > .deploy-footer--key {
        color: $footer-key-foreground;
        background: $footer-key-background;
        text-style: bold;
    }
    DeployFooter > .deploy-footer--description {
        color: $footer-description-foreground;
        background: $footer-description-background;
    }
    DeployFooter > .deploy-footer--disabled { text-style: dim; }
    """

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's own keyword
        super().__init__(id=id)
        self._spans: list[tuple[int, int, Hint]] = []  # [start, end) cells of each drawn hint
        self.painted = False
        """Rendered at least once: the frame being written shows it (the wizard's first-frame signal)."""

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen: Screen[object]) -> None:
        self.refresh()

    def hints(self) -> tuple[list[Hint], Hint | None]:
        """The hints to show in order (one per action, essential ones first) and the palette's hint."""
        app = self.app
        palette_key = app.COMMAND_PALETTE_BINDING if app.ENABLE_COMMAND_PALETTE else None
        seen: set[str] = set()
        hints: list[Hint] = []
        palette: Hint | None = None
        for key, (_node, binding, enabled, tooltip) in self.screen.active_bindings.items():
            display = app.get_key_display(binding)
            hint = Hint(binding.key, display, binding.description, binding.action, enabled, tooltip)
            if key == palette_key and palette is None:
                palette = hint
            elif binding.show and binding.action not in seen:
                seen.add(binding.action)
                hints.append(hint)

        def rank(hint: Hint) -> int:
            return ESSENTIAL.index(hint.action) if hint.action in ESSENTIAL else len(ESSENTIAL)

        return sorted(hints, key=rank), palette  # stable: the others keep the screen's order

    def render(self) -> Text:
        key_style = self.get_component_rich_style("deploy-footer--key")
        description_style = self.get_component_rich_style("deploy-footer--description")
        disabled = self.get_component_rich_style("deploy-footer--disabled")
        hints, palette = self.hints()
        line = Text(no_wrap=True, overflow="crop", end="")
        spans: list[tuple[int, int, Hint]] = []

        def add(hint: Hint) -> None:
            start = line.cell_len
            dim = None if hint.enabled else disabled
            line.append(f" {hint.display}", key_style + dim if dim else key_style)
            line.append(f" {hint.description} ", description_style + dim if dim else description_style)
            spans.append((start, line.cell_len, hint))

        for hint in hints:
            add(hint)
        width = self.size.width
        if palette is not None:
            room = width - line.cell_len - len(f" {palette.display} {palette.description} ")
            if room >= 1:  # only when it fits: never drawn over another hint
                line.append(" " * room)
                add(palette)
        self._spans = [(start, end, hint) for start, end, hint in spans if start < width]
        self.painted = True
        return line

    def shown(self) -> list[Hint]:
        """The hints drawn (at least partly) in the last render, left to right."""
        return [hint for _start, _end, hint in self._spans]

    def region_of(self, action: str) -> tuple[int, int] | None:
        """The [start, end) cells of the hint for ``action`` as last drawn, or None."""
        return next(((s, e) for s, e, hint in self._spans if hint.action == action), None)

    def on_mouse_move(self, event: events.MouseMove) -> None:
        hint = next((h for start, end, h in self._spans if start <= event.x < end), None)
        self.tooltip = (hint.tooltip or hint.description) if hint is not None else None

    def on_click(self, event: events.Click) -> None:
        for start, end, hint in self._spans:
            if start <= event.x < end:
                if hint.enabled:
                    self.app.simulate_key(hint.key)
                else:
                    self.app.bell()
                return
