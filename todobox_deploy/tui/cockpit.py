"""The operator's cockpit over the wizard: monitoring tails, runnable checks, common issues matched live,
session-wide search and "next error".

The app's bindings (:data:`COCKPIT_BINDINGS`) call the actions of the app's one :class:`Cockpit`
(:func:`cockpit_for`); the wizard's LogBatch handler and the monitoring screen feed its
``watch_output``. This module stays light: the cockpit's screens load on first use, not before the first
frame.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any, cast

from textual.app import App
from textual.binding import Binding, BindingType

if TYPE_CHECKING:
    from todobox_deploy.tui.app import DeployApp
    from todobox_deploy.tui.cockpit_actions import Cockpit

QUICKREF = "quickref"
"""The log pane's window for the checks' output (shown like a phase's log)."""

COCKPIT_BINDINGS: list[BindingType] = [
    # priority: also over a gate's dialog (a key an Input types, such as m, still goes to the Input)
    Binding(
        "m", "monitor", "Monitor", id="monitor", priority=True, tooltip="Live tails: app, MySQL, journal"
    ),
    Binding("ctrl+f", "session_search", "Search all", id="session_search", show=False, priority=True),
    Binding("x", "run_check", "Run check", id="run_check", show=False, tooltip="Run the selected reference"),
    Binding("i", "issue_action", "Issue action", id="issue_action", show=False, tooltip="Act on the issue"),
    Binding("e", "next_error", "Next error", id="next_error", show=False, tooltip="Jump to the next error"),
]

_COCKPITS: weakref.WeakKeyDictionary[App[Any], Cockpit] = weakref.WeakKeyDictionary()


def cockpit_for(app: App[Any]) -> Cockpit:
    """The app's cockpit (made on first use)."""
    found = _COCKPITS.get(app)
    if found is None:
        from todobox_deploy.tui.cockpit_actions import Cockpit

        found = _COCKPITS[app] = Cockpit(cast("DeployApp", app))
    return found
