"""The gate between phases: the operator reviews a phase's evidence and confirms it (or not)."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from todobox_deploy.checklist.model import ChecklistNode
from todobox_deploy.checklist.progress import ACCEPTABLE
from todobox_deploy.core.outcome import PhaseOutcome
from todobox_deploy.tui.text import for_display


def evidence_table(outcome: PhaseOutcome) -> Table:
    """The outcome's facts as a two-column table (plain, inert text: facts may come from the host)."""
    table = Table(show_header=True, header_style="bold", expand=True, box=None)
    table.add_column("Fact", no_wrap=True)
    table.add_column("Value", overflow="fold")
    for key, value in outcome.facts:
        table.add_row(Text(for_display(key)), Text(for_display(value)))
    return table


class ConfirmPhase(ModalScreen[bool]):
    """Show a finished phase's outcome and evidence; dismiss with True (confirm) or False."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Confirm", id="confirm.yes"),
        Binding("n", "answer(False)", "Not yet", id="confirm.no"),
        Binding("escape", "answer(False)", "Cancel", id="confirm.cancel"),
    ]
    DEFAULT_CSS = """
    ConfirmPhase { align: center middle; }
    ConfirmPhase > #confirm-dialog {
        width: 90; max-width: 95%; height: auto; max-height: 90%;
        border: thick $primary; background: $surface; padding: 1 2;
    }
    ConfirmPhase.-failed > #confirm-dialog { border: thick $error; }
    ConfirmPhase #confirm-title { text-style: bold; width: 1fr; }
    ConfirmPhase #confirm-summary { margin: 1 0; }
    ConfirmPhase #confirm-facts { height: auto; max-height: 16; }
    ConfirmPhase #confirm-note { color: $text-muted; margin-top: 1; }
    ConfirmPhase #confirm-buttons { height: auto; align-horizontal: right; margin-top: 1; }
    ConfirmPhase Button { margin-left: 2; }
    """

    def __init__(self, node: ChecklistNode, outcome: PhaseOutcome) -> None:
        super().__init__()
        self.node = node
        self.outcome = outcome
        self.acceptable = outcome.status in ACCEPTABLE

    def compose(self) -> ComposeResult:
        status = self.outcome.status.value.upper()
        with Vertical(id="confirm-dialog"):
            yield Label(Text(for_display(f"Confirm phase: {self.node.title}")), id="confirm-title")
            yield Static(Text(for_display(f"{status}: {self.outcome.summary}")), id="confirm-summary")
            with VerticalScroll(id="confirm-facts"):
                yield Static(evidence_table(self.outcome))
            note = (
                "Confirming records your name and the time, and unlocks the next phase."
                if self.acceptable
                else "This phase did not succeed. Acknowledging records it; the phase must be re-run "
                "before the next one can start."
            )
            yield Static(note, id="confirm-note")
            with Horizontal(id="confirm-buttons"):
                label = "Confirm (y)" if self.acceptable else "Acknowledge (y)"
                yield Button(label, variant="success" if self.acceptable else "error", id="confirm-yes")
                yield Button("Not yet (n)", variant="default", id="confirm-no")

    def on_mount(self) -> None:
        self.set_class(not self.acceptable, "-failed")
        self.query_one("#confirm-yes" if self.acceptable else "#confirm-no", Button).focus()

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)

    @on(Button.Pressed, "#confirm-yes")
    def _yes(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#confirm-no")
    def _no(self) -> None:
        self.dismiss(False)
