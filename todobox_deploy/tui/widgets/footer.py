"""The footer with the essential keys first: in a narrow terminal the others are the ones cut off."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Footer

ESSENTIAL = ("quit", "show_signoff", "show_keys")
"""Actions whose key hint is always shown, in this order, before every other hint."""


class DeployFooter(Footer):
    """Textual's footer (compact), its hints reordered: ^q Quit, s Sign-off and ? Keys come first."""

    def __init__(self) -> None:
        super().__init__(compact=True)

    def compose(self) -> ComposeResult:
        keys = list(super().compose())
        palette = [k for k in keys if k.has_class("-command-palette")]
        hints = [k for k in keys if not k.has_class("-command-palette")]

        def rank(widget: object) -> int:
            action = getattr(widget, "action", "")
            return ESSENTIAL.index(action) if action in ESSENTIAL else len(ESSENTIAL)

        yield from sorted(hints, key=rank)  # stable: the others keep their order
        yield from palette
