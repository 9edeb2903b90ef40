"""Command palette: what can be done on the current screen (nothing mutating on the sign-off)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from todobox_deploy.tui.screens.signoff import SignOffScreen
from todobox_deploy.tui.screens.wizard import WizardScreen

Command = tuple[str, Callable[[], object], str]


class DeployCommands(Provider):
    """Screen-aware commands: phase actions on the wizard, navigation only on the sign-off."""

    def commands(self) -> list[Command]:
        """(name, callback, help) for the screen the palette was opened on."""
        screen = self.screen
        if isinstance(screen, WizardScreen):
            pane = screen.log_pane
            commands: list[Command] = [
                ("Run selected phase", screen.action_run_phase, "Run the automated phase under the cursor"),
                ("Run next phase", screen.action_run_next, "Run the first phase not yet confirmed"),
                ("Cancel running phase", screen.action_cancel_phase, "Ask the running phase to stop"),
                ("Confirm selected manual item", screen.action_confirm_item, "Tick or untick a manual item"),
                ("Follow live log", screen.action_follow_live, "Show the running phase's log tail"),
                ("Toggle log follow mode", pane.action_toggle_follow, "Stop or resume auto-scrolling"),
                ("Search log", pane.action_open_search, "Find a line in the log on view"),
                ("Show sign-off (read-only)", screen.show_signoff, "Phase outcomes and confirmations"),
                ("Write the support bundle", screen.action_bundle, "A .tar.gz of this session for support"),
                ("Zoom the details panel", screen.action_zoom_details, "Read a document full screen"),
            ]
            for node in screen.checklist.phase_nodes():
                commands.append(
                    (f"Go to phase: {node.title}", partial(screen.checklist_tree.select_id, node.id), node.id)
                )
            return commands
        if isinstance(screen, SignOffScreen):
            return [
                ("Back to the wizard", self.app.pop_screen, "Leave the read-only sign-off"),
                ("Write the support bundle", screen.action_bundle, "A .tar.gz of this session for support"),
            ]
        return []

    async def discover(self) -> Hits:
        for name, callback, help_text in self.commands():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, callback, help_text in self.commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)
