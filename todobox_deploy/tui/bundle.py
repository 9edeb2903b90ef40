"""The support bundle from the TUI: written in a thread worker, its path notified and journaled."""

from __future__ import annotations

from typing import Any

from textual.screen import Screen

from todobox_deploy.engine.flow import DeployFlow
from todobox_deploy.tui.text import for_display


def write_bundle_in_background(screen: Screen[Any], flow: DeployFlow) -> None:
    """Write ``<session>-bundle.tar.gz`` for "Contact support" and notify its path (errors are notified
    by the app's one worker-error handler)."""
    session_dir = flow.session_dir
    if session_dir is None:
        screen.notify(
            "No session folder to bundle (this session keeps no journal on disk).", severity="warning"
        )
        return
    app = screen.app

    def work() -> None:
        from todobox_deploy.journal.bundle import write_bundle  # loads on first use, not at start-up

        path = write_bundle(session_dir)
        flow.record("bundle_written", path=str(path))
        app.notify(  # thread-safe
            for_display(f"{path}"), title="Support bundle written", timeout=20, markup=False
        )

    screen.notify("Writing the support bundle…")
    app.run_worker(work, name="support bundle", group="bundle", thread=True, exit_on_error=False)
