"""The Textual app: built by ``make_app`` (used by the CLI and by tests with fakes)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from textual.app import App
from textual.binding import Binding, BindingType
from textual.worker import Worker, WorkerState

from todobox_deploy.checklist.model import ChecklistNode
from todobox_deploy.checklist.progress import DeployProgress
from todobox_deploy.config import DeployConfig
from todobox_deploy.engine.events import PhaseOutcome, PhaseRunner, PhaseStatus
from todobox_deploy.tui.commands import DeployCommands
from todobox_deploy.tui.messages import LogBatch, PhaseFinished
from todobox_deploy.tui.screens.signoff import SignOffScreen
from todobox_deploy.tui.screens.wizard import Clock, Journal, WizardScreen
from todobox_deploy.tui.transcript import TranscriptWriter


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _no_journal(entry: dict[str, Any]) -> None:
    """Default journal: record nothing."""


class DeployApp(App[int]):
    """A guided, gated deploy session. Exits with 0 when every phase was confirmed, else 1."""

    CSS_PATH = "app.tcss"
    TITLE = "todobox-deploy"
    COMMANDS = App.COMMANDS | {DeployCommands}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "show_signoff", "Sign-off", id="show_signoff", tooltip="Read-only sign-off preview"),
        Binding("ctrl+q", "quit", "Quit", id="quit", priority=True),
    ]

    def __init__(
        self,
        checklist: ChecklistNode,
        runner: PhaseRunner,
        *,
        operator: str,
        config: DeployConfig | None = None,
        journal: Journal | None = None,
        clock: Clock | None = None,
        transcript_dir: Path | None = None,
        max_log_lines: int = 10_000,
    ) -> None:
        super().__init__()
        self.checklist = checklist
        self.runner = runner
        self.config = config
        self.operator = operator
        self.progress = DeployProgress(checklist)
        self.journal: Journal = journal or _no_journal
        self.clock: Clock = clock or _utc_now
        self.transcripts = TranscriptWriter(transcript_dir) if transcript_dir is not None else None
        self.max_log_lines = max_log_lines
        self.wizard: WizardScreen | None = None
        self._quit_warned = False

    @property
    def host(self) -> str | None:
        return self.config.target.host if self.config is not None else None

    def on_mount(self) -> None:
        # Pushed (not the default screen) so that later screen switches have somewhere to return to.
        self.wizard = WizardScreen(
            self.checklist,
            self.runner,
            self.progress,
            operator=self.operator,
            host=self.host,
            journal=self.journal,
            clock=self.clock,
            transcript=self.transcripts,
            max_log_lines=self.max_log_lines,
        )
        self.push_screen(self.wizard)

    def on_unmount(self) -> None:
        if self.transcripts is not None:
            self.transcripts.close()

    def on_phase_finished(self, message: PhaseFinished) -> None:
        """Bubbled up from the wizard after it handled the outcome: make the transcripts durable."""
        if self.transcripts is not None:
            self.transcripts.flush()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return not (action == "show_signoff" and isinstance(self.screen, SignOffScreen))

    def action_show_signoff(self) -> None:
        if self.wizard is not None and not isinstance(self.screen, SignOffScreen):
            self.wizard.show_signoff()

    async def action_quit(self) -> None:
        if self.progress.running is not None and not self._quit_warned:
            self._quit_warned = True
            self.notify(
                f"Phase {self.progress.running!r} is running: cancel it (escape) and wait, "
                "or press ctrl+q again to cancel it and quit.",
                severity="warning",
            )
            return
        if self.wizard is not None and self.progress.running is not None:
            self.wizard.action_cancel_phase()  # the worker thread sees the event; the screen unmount too
        self.exit(0 if self.progress.all_confirmed else 1)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place worker errors are routed: notify, a log line, and the phase marked FAILED."""
        worker = event.worker
        if event.state is not WorkerState.ERROR:
            return
        error = worker.error
        text = f"{type(error).__name__}: {error}"
        if worker.group == "phase" and self.wizard is not None:
            phase_id = worker.name
            self.wizard.post_message(LogBatch(phase_id, "error", [f"phase crashed: {text}"]))
            outcome = PhaseOutcome(PhaseStatus.FAILED, f"crashed: {text}", (("error", text),))
            self.wizard.post_message(PhaseFinished(phase_id, outcome))
            self.notify(text, title=f"Phase {phase_id} crashed", severity="error", timeout=10)
        else:
            self.notify(text, title=f"Worker {worker.name or worker.group} failed", severity="error")


def make_app(
    checklist: ChecklistNode,
    runner: PhaseRunner,
    *,
    config: DeployConfig | None = None,
    operator: str,
    journal: Callable[[dict[str, Any]], None] | None = None,
    clock: Clock | None = None,
    transcript_dir: Path | None = None,
    max_log_lines: int = 10_000,
) -> DeployApp:
    """Build the deploy app; the CLI passes the real engine, tests a fake ``PhaseRunner``."""
    return DeployApp(
        checklist,
        runner,
        operator=operator,
        config=config,
        journal=journal,
        clock=clock,
        transcript_dir=transcript_dir,
        max_log_lines=max_log_lines,
    )
