"""Modal gates around a phase: the second confirmation of a destructive step, a skip's reason, the rollback.

Every gate hides notifications while it is on screen (:class:`GateModal`): a gate's evidence and buttons
are never covered by a toast; the toasts that have not timed out show again on the screen beneath.
"""

from __future__ import annotations

from typing import ClassVar, TypeVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from todobox_deploy.tui.text import for_display
from todobox_deploy.tui.widgets.ordered_input import OrderedInput

T = TypeVar("T")

DESTRUCTIVE: dict[str, str] = {
    "stop_app": "stops the application: the downtime starts now",
    "migrate": "changes the database schema (the backup is the way back)",
    "rollback_db": "restores or downgrades the database",
}
"""Phases that ask for a second, deliberate confirmation before they start, and what each does."""


class GateModal(ModalScreen[T]):
    """A modal that no notification covers (toasts are hidden while it is the current screen)."""

    DEFAULT_CSS = """
    GateModal Toast { visibility: hidden; }
    GateModal { align: center middle; }
    GateModal > Vertical {
        width: 84; max-width: 96%; height: auto; max-height: 100%;
        background: $surface; padding: 1 2; border: thick $warning;
    }
    GateModal .gate-title { text-style: bold; width: 1fr; }
    GateModal .gate-text { margin: 1 0 0 0; }
    GateModal .gate-command { margin: 1 0 0 0; padding: 0 1; background: $boost; color: $text; }
    GateModal .gate-error { color: $text-error; height: auto; }
    GateModal Input { margin-top: 1; }
    GateModal .gate-buttons { height: auto; align-horizontal: right; margin-top: 1; }
    GateModal Button { margin-left: 2; }
    """


class DestructiveConfirm(GateModal[bool]):
    """Before a destructive phase starts: the operator types its name (Enter) or goes back (escape)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="destructive.back"),
    ]
    DEFAULT_CSS = """
    DestructiveConfirm > Vertical { border: thick $error; }
    """

    def __init__(self, phase_id: str, title: str) -> None:
        super().__init__()
        self.phase_id, self.phase_title = phase_id, title

    def compose(self) -> ComposeResult:
        what = DESTRUCTIVE.get(self.phase_id, "changes the host")
        with Vertical():
            yield Label(Text(for_display(f"Start {self.phase_title}?")), classes="gate-title")
            yield Static(
                Text(for_display(f"This step {what}. Type the phase name {self.phase_id} and press Enter.")),
                classes="gate-text",
            )
            yield OrderedInput(placeholder=self.phase_id, id="destructive-name")
            yield Static("", id="destructive-error", classes="gate-error")
            yield Static("escape: back, nothing started", classes="gate-text")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted, "#destructive-name")
    def _submitted(self, event: Input.Submitted) -> None:
        if event.value.strip() == self.phase_id:
            self.dismiss(True)
            return
        message = f"That is not {self.phase_id}: type it exactly to start the step, or press escape."
        self.query_one("#destructive-error", Static).update(Text(message))

    def action_back(self) -> None:
        self.dismiss(False)


class SkipReason(GateModal[str | None]):
    """Skip a read-only phase: the reason the operator types is journaled (escape: do not skip)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="skip.back"),
    ]

    def __init__(self, phase_id: str, title: str) -> None:
        super().__init__()
        self.phase_id, self.phase_title = phase_id, title

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text(for_display(f"Skip {self.phase_title}?")), classes="gate-title")
            yield Static(
                Text(
                    "This phase only reads the host; skipping it leaves its check undone. "
                    "The reason you type goes into the journal and the sign-off."
                ),
                classes="gate-text",
            )
            yield OrderedInput(placeholder="why this phase is skipped", id="skip-reason")
            yield Static("", id="skip-error", classes="gate-error")
            yield Static("enter: skip with this reason · escape: back", classes="gate-text")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted, "#skip-reason")
    def _submitted(self, event: Input.Submitted) -> None:
        reason = " ".join(event.value.split())
        if reason:
            self.dismiss(reason)
        else:
            self.query_one("#skip-error", Static).update(Text("A reason is needed to skip a phase."))

    def action_back(self) -> None:
        self.dismiss(None)


class RollbackOffer(GateModal[bool]):
    """The rollback is a session of its own: show its exact command; True: quit now to run it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "answer(True)", "Quit to roll back", id="rollback.quit"),
        Binding("escape", "answer(False)", "Back", id="rollback.back"),
    ]
    DEFAULT_CSS = """
    RollbackOffer > Vertical { border: thick $error; }
    """

    def __init__(self, phase_title: str, command: str) -> None:
        super().__init__()
        self.phase_title, self.command = phase_title, command

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text(for_display(f"Roll back after: {self.phase_title}")), classes="gate-title")
            yield Static(
                "The rollback runs as its own gated session: it finds the host's state, plans the steps "
                "and runs none before you confirm it. Nothing has been launched. Quit this wizard and run:",
                classes="gate-text",
            )
            yield Static(Text(for_display(self.command)), id="rollback-command", classes="gate-command")
            with Horizontal(classes="gate-buttons"):
                yield Button("Quit to roll back (q)", variant="error", id="rollback-quit", compact=True)
                yield Button("Back (esc)", variant="primary", id="rollback-back", compact=True)

    def on_mount(self) -> None:
        self.query_one("#rollback-back", Button).focus()

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)

    @on(Button.Pressed, "#rollback-quit")
    def _quit(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#rollback-back")
    def _back(self) -> None:
        self.dismiss(False)
