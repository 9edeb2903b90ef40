"""The footer with the essential keys first: in a narrow terminal the others are the ones cut off."""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.widgets import Footer

ESSENTIAL = ("quit", "show_signoff", "show_keys")
"""Actions whose key hint is always shown, in this order, before every other hint."""
PALETTE_MIN_WIDTH = 100
"""Narrower than this, the palette's hint (docked right) would sit on the hints that overflow under it and
garble them: it is left out (ctrl+p still opens the palette, and the keys screen lists it)."""


class DeployFooter(Footer):
    """Textual's footer (compact), its hints reordered: ^q Quit, s Sign-off and ? Keys come first."""

    def __init__(self) -> None:
        super().__init__(compact=True)
        self._wide: bool | None = None

    def compose(self) -> ComposeResult:
        keys = list(super().compose())
        palette = [k for k in keys if k.has_class("-command-palette")]
        hints = [k for k in keys if not k.has_class("-command-palette")]

        def rank(widget: object) -> int:
            action = getattr(widget, "action", "")
            return ESSENTIAL.index(action) if action in ESSENTIAL else len(ESSENTIAL)

        self._wide = self.app.size.width >= PALETTE_MIN_WIDTH
        yield from sorted(hints, key=rank)  # stable: the others keep their order
        if self._wide:
            yield from palette

    def on_resize(self, event: events.Resize) -> None:
        wide = event.size.width >= PALETTE_MIN_WIDTH
        if self._wide is not None and wide != self._wide:
            self._wide = wide
            self.call_after_refresh(self.recompose)
