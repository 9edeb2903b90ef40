"""The Textual app: built by ``make_app`` (used by the CLI and by tests with scripted phases)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import ClassVar

from textual.app import App
from textual.binding import Binding, BindingType
from textual.command import Provider
from textual.worker import Worker, WorkerState

from todobox_deploy.core.outcome import PhaseOutcome, PhaseStatus
from todobox_deploy.engine.flow import DeployFlow
from todobox_deploy.tui.cockpit import COCKPIT_BINDINGS, cockpit_for
from todobox_deploy.tui.lazy import is_gate, is_signoff
from todobox_deploy.tui.messages import LogBatch, PhaseFinished
from todobox_deploy.tui.screens.wizard import Clock, WizardScreen
from todobox_deploy.tui.text import for_display


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _deploy_commands() -> type[Provider]:
    """The palette's provider, loaded when the palette first opens (not before the first frame)."""
    from todobox_deploy.tui.commands import DeployCommands

    return DeployCommands


class DeployApp(App[int]):
    """A guided, gated deploy session over a :class:`DeployFlow`. Exits with 0 when every phase was
    confirmed, else 3 (stopped at a gate that needs a person)."""

    CSS_PATH = "app.tcss"
    TITLE = "todobox-deploy"
    COMMANDS = App.COMMANDS | {_deploy_commands}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "show_signoff", "Sign-off", id="show_signoff", tooltip="Read-only sign-off preview"),
        Binding("ctrl+q", "quit", "Quit", id="quit", priority=True),
        *COCKPIT_BINDINGS,  # monitoring, session search, checks, common issues, next error (tui/cockpit.py)
        Binding("f1,question_mark", "show_keys", "Keys", id="show_keys", key_display="?"),
    ]

    def __init__(self, flow: DeployFlow, *, clock: Clock | None = None, max_log_lines: int = 10_000) -> None:
        super().__init__()
        self.flow = flow
        self.checklist = flow.checklist
        self.progress = flow.progress
        self.operator = flow.operator
        self.clock: Clock = clock or _utc_now
        self.max_log_lines = max_log_lines
        self.wizard: WizardScreen | None = None
        self._quit_warned = False

    @property
    def host(self) -> str | None:
        return self.flow.host

    def get_default_screen(self) -> WizardScreen:
        # The wizard is the bottom of the screen stack: every other screen is pushed on it and popped back
        # to it. (Pushing it on Textual's blank default screen drew the screen twice before the first frame.)
        self.wizard = WizardScreen(self.flow, clock=self.clock, max_log_lines=self.max_log_lines)
        return self.wizard

    def post_display_hook(self) -> None:
        """After each display: the wizard's first frame lets the rest of its screen load.

        A display inside a batch (while screens mount) writes nothing: Textual's ``_batch_count`` says so.
        Were that to change, the rest would load before the first frame instead of after it: slower (the
        first-frame benchmark would show it), never wrong."""
        wizard = self.wizard
        if wizard is None or wizard.first_frame_shown or getattr(self, "_batch_count", False):
            return
        if wizard.painted:  # drawn, on top or behind a gate (a resumed session opens on its evidence)
            wizard.first_frame_shown = True
            self.call_later(wizard.after_first_frame)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "show_signoff" and is_gate(self.screen):
            return None  # shown (dimmed) behind a gate, but a gate's keys are its own
        return not (action == "show_signoff" and is_signoff(self.screen))

    def action_show_keys(self) -> None:
        from todobox_deploy.tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    # -- the cockpit's keys (tui/cockpit.py) ---------------------------------------------------------

    def action_monitor(self) -> None:
        cockpit_for(self).toggle_monitor()

    def action_session_search(self) -> None:
        cockpit_for(self).open_search()

    def action_run_check(self) -> None:
        cockpit_for(self).run_check()

    def action_issue_action(self) -> None:
        cockpit_for(self).issue_action()

    def action_next_error(self) -> None:
        cockpit_for(self).next_error()

    def action_show_signoff(self) -> None:
        if self.wizard is not None and not is_signoff(self.screen):
            self.wizard.show_signoff()

    async def action_quit(self) -> None:
        running = self.flow.running
        if running is not None and not self._quit_warned:
            self._quit_warned = True
            self.notify(
                f"Phase {running!r} is running: cancel it (escape) and wait, "
                "or press ctrl+q again to cancel it and quit.",
                severity="warning",
            )
            return
        if running is not None:
            self.flow.abandon("the operator quit the wizard while the phase ran")
        self.exit(0 if self.flow.all_confirmed else 3)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place worker errors are routed: notify, a log line, and the phase marked FAILED."""
        worker = event.worker
        if event.state is not WorkerState.ERROR:
            return
        error = worker.error
        text = f"{type(error).__name__}: {error}"  # may quote the host: kept exact, shown inert
        shown = for_display(text)
        if worker.group == "phase" and self.wizard is not None:
            phase_id = worker.name
            self.wizard.post_message(LogBatch(phase_id, "error", [f"phase crashed: {text}"]))
            outcome = PhaseOutcome(PhaseStatus.FAILED, f"crashed: {text}", (("error", text),))
            self.wizard.post_message(PhaseFinished(phase_id, outcome))
            self.notify(shown, title=f"Phase {phase_id} crashed", severity="error", timeout=10, markup=False)
        else:
            title = for_display(f"Worker {worker.name or worker.group} failed")
            self.notify(shown, title=title, severity="error", markup=False)


def make_app(flow: DeployFlow, *, clock: Clock | None = None, max_log_lines: int = 10_000) -> DeployApp:
    """Build the deploy app on a flow; the CLI passes the real engine's, tests one with scripted phases."""
    return DeployApp(flow, clock=clock, max_log_lines=max_log_lines)
