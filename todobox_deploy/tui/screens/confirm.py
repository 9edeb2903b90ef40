"""The gate between phases: the operator reviews a phase's evidence and confirms it (or not).

A phase that did not succeed shows its diagnosis (the facts and the last error lines) and offers what can
be done about it: run it again, skip it (read-only phases only, with a reason), or the rollback (when the
deploy has changed the host).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Label, Static

from todobox_deploy.checklist.model import ChecklistNode
from todobox_deploy.checklist.progress import ACCEPTABLE
from todobox_deploy.core.outcome import PhaseOutcome
from todobox_deploy.tui.screens.gates import GateModal
from todobox_deploy.tui.text import for_display


class Answer(Enum):
    """How the operator left the gate."""

    CONFIRM = "confirm"  # y: confirm (or, for a failed phase, acknowledge: it still does not unlock)
    NOT_YET = "not_yet"
    RETRY = "retry"
    SKIP = "skip"
    ROLLBACK = "rollback"


@dataclass(frozen=True)
class FailureOptions:
    """What a failed phase's gate offers besides "not yet"."""

    retry: bool = False
    skip: bool = False
    rollback: str | None = None  # the exact command, when the deploy has changed the host
    diagnosis: tuple[str, ...] = ()  # the phase's last error lines (inert, with their gutter)


def evidence_table(outcome: PhaseOutcome) -> Table:
    """The outcome's facts as a table, with how each was obtained when known (plain, inert text)."""
    rows = outcome.rows()
    typed = any(how for _, _, how in rows)
    table = Table(show_header=True, header_style="bold", expand=True, box=None)
    table.add_column("Fact", no_wrap=True, max_width=34)
    table.add_column("Value", overflow="fold", ratio=1)
    if typed:
        table.add_column("How", no_wrap=True)
    for key, value, how in rows:
        cells = [Text(for_display(key)), Text(for_display(value))]
        table.add_row(*cells, *([Text(how)] if typed else []))
    return table


class ConfirmPhase(GateModal[Answer]):
    """Show a finished phase's outcome and evidence; dismiss with the operator's :class:`Answer`."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer('confirm')", "Confirm", id="confirm.yes"),
        Binding("n", "answer('not_yet')", "Not yet", id="confirm.no"),
        Binding("escape", "answer('not_yet')", "Cancel", id="confirm.cancel"),
        Binding("r", "answer('retry')", "Retry", id="confirm.retry"),
        Binding("s", "answer('skip')", "Skip", id="confirm.skip"),
        Binding("b", "answer('rollback')", "Rollback", id="confirm.rollback"),
    ]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (30, "-tall")]  # Textual adds -short / -tall by height
    DEFAULT_CSS = """
    ConfirmPhase > #confirm-dialog {
        width: 96; max-width: 96%; height: auto; max-height: 100%; border: thick $primary; padding: 0 1;
    }
    ConfirmPhase.-failed > #confirm-dialog { border: thick $error; }
    ConfirmPhase #confirm-summary { margin: 1 0; }
    ConfirmPhase #confirm-facts { height: auto; max-height: 18; }
    ConfirmPhase.-short #confirm-facts { max-height: 8; }
    ConfirmPhase.-short #confirm-summary { margin: 0; }
    ConfirmPhase #confirm-diagnosis { color: $text-warning; margin-top: 1; }
    ConfirmPhase #confirm-rollback { margin-top: 1; padding: 0 1; background: $error 15%; }
    ConfirmPhase #confirm-note { color: $text-muted; margin-top: 1; }
    ConfirmPhase.-short #confirm-note { margin-top: 0; }
    ConfirmPhase #confirm-buttons { height: auto; align-horizontal: right; margin-top: 1; }
    """

    def __init__(
        self, node: ChecklistNode, outcome: PhaseOutcome, options: FailureOptions | None = None
    ) -> None:
        super().__init__()
        self.node = node
        self.outcome = outcome
        self.acceptable = outcome.status in ACCEPTABLE
        self.options = FailureOptions() if self.acceptable or options is None else options

    def compose(self) -> ComposeResult:
        status = self.outcome.status.value.upper()
        title = "Confirm phase" if self.acceptable else "Phase did not succeed"
        with Vertical(id="confirm-dialog"):
            yield Label(Text(for_display(f"{title}: {self.node.title}")), classes="gate-title")
            yield Static(Text(for_display(f"{status}: {self.outcome.summary}")), id="confirm-summary")
            with VerticalScroll(id="confirm-facts"):
                yield Static(evidence_table(self.outcome))
                if self.options.diagnosis:
                    text = "Last error lines:\n" + "\n".join(self.options.diagnosis)
                    yield Static(Text(text), id="confirm-diagnosis")
            if self.options.rollback:
                text = (
                    "The deploy has changed the host. To roll back (b), quit and run: "
                    + self.options.rollback
                )
                yield Static(Text(for_display(text)), id="confirm-rollback")
            yield Static(self._note(), id="confirm-note")
            with Horizontal(id="confirm-buttons"):
                yield from self._buttons()

    def _note(self) -> str:
        if self.acceptable:
            return "Confirming records your name and the time, and unlocks the next phase."
        return (
            "The next phase stays locked until this one is run again and confirmed"
            + (" or skipped with a reason" if self.options.skip else "")
            + ". y acknowledges the failure on the record."
        )

    def _buttons(self) -> ComposeResult:
        if self.acceptable:
            yield Button("Confirm (y)", variant="success", id="confirm-yes", compact=True)
        else:
            if self.options.retry:
                yield Button("Retry (r)", variant="primary", id="confirm-retry", compact=True)
            if self.options.skip:
                yield Button("Skip… (s)", variant="warning", id="confirm-skip", compact=True)
            if self.options.rollback:
                yield Button("Rollback… (b)", variant="error", id="confirm-rollback-button", compact=True)
        yield Button("Not yet (n)", variant="default", id="confirm-no", compact=True)

    def on_mount(self) -> None:
        self.set_class(not self.acceptable, "-failed")
        self.query_one("#confirm-yes" if self.acceptable else "#confirm-no", Button).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action != "answer" or not parameters:
            return True
        offered = {
            "retry": self.options.retry,
            "skip": self.options.skip,
            "rollback": self.options.rollback is not None,
        }
        return offered.get(str(parameters[0]), True)

    def action_answer(self, answer: str) -> None:
        self.dismiss(Answer(answer))

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        answers = {
            "confirm-yes": Answer.CONFIRM,
            "confirm-no": Answer.NOT_YET,
            "confirm-retry": Answer.RETRY,
            "confirm-skip": Answer.SKIP,
            "confirm-rollback-button": Answer.ROLLBACK,
        }
        answer = answers.get(event.button.id or "")
        if answer is not None:
            self.dismiss(answer)
