"""A yes/no question that is not a gate: e.g. the online migration offered at the stop gate."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Label, Static

from todobox_deploy.tui.screens.gates import GateModal
from todobox_deploy.tui.text import for_display


class AskScreen(GateModal[bool]):
    """Shows ``question`` (plain, inert text: it may quote the host); dismisses with True (yes) or False.
    No notification covers it (a :class:`GateModal`)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes", id="ask.yes"),
        Binding("n,escape", "answer(False)", "No", id="ask.no"),
    ]
    DEFAULT_CSS = """
    AskScreen { align: center middle; }
    AskScreen > #ask-dialog {
        width: 80; max-width: 95%; height: auto; border: thick $warning; background: $surface; padding: 1 2;
    }
    AskScreen #ask-title { text-style: bold; }
    AskScreen #ask-text { margin: 1 0; }
    AskScreen #ask-buttons { height: auto; align-horizontal: right; }
    AskScreen Button { margin-left: 2; }
    """

    def __init__(self, title: str, question: str, *, yes: str, no: str) -> None:
        super().__init__()
        self.title_text, self.question, self.yes, self.no = title, question, yes, no

    def compose(self) -> ComposeResult:
        with Vertical(id="ask-dialog"):
            yield Label(Text(for_display(self.title_text)), id="ask-title")
            yield Static(Text(for_display(self.question)), id="ask-text")
            with Horizontal(id="ask-buttons"):
                yield Button(f"{self.yes} (y)", variant="warning", id="ask-yes")
                yield Button(f"{self.no} (n)", variant="primary", id="ask-no")

    def on_mount(self) -> None:
        self.query_one("#ask-no", Button).focus()  # the checklist's way is the default

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)

    @on(Button.Pressed, "#ask-yes")
    def _yes(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#ask-no")
    def _no(self) -> None:
        self.dismiss(False)
