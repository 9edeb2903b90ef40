"""The footer in a narrow terminal: the essential keys first, no hint drawn over another."""

from __future__ import annotations

from collections.abc import Callable

from textual.widget import Widget

from todobox_deploy.tui.app import DeployApp
from todobox_deploy.tui.widgets.footer import ESSENTIAL, PALETTE_MIN_WIDTH

from .conftest import DEMO_CONFIG
from .test_wizard import wizard


def _keys(app: DeployApp) -> list[Widget]:
    return list(wizard(app).query("FooterKey"))


def _palette(app: DeployApp) -> list[Widget]:
    return [k for k in _keys(app) if k.has_class("-command-palette")]


async def test_narrow_footer_with_the_log_focused_has_no_overlapping_hints(
    build_app: Callable[..., DeployApp],
) -> None:
    """At 80 columns with the log pane focused the hints overflow: the palette's hint (docked right) is
    left out rather than drawn over them; it comes back when the terminal is wide again."""
    app = build_app(config=DEMO_CONFIG)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.2)
        wizard(app).log_pane.log_widget.focus()
        await pilot.pause(0.3)
        keys = _keys(app)
        actions = [getattr(k, "action", "") for k in keys]
        assert "toggle_follow" in actions  # the log pane's own hints are there: the row overflows
        assert actions[: len(ESSENTIAL)] == list(ESSENTIAL)
        assert all(k.region.right <= 80 for k in keys[: len(ESSENTIAL)])
        assert not _palette(app)
        spans = sorted((k.region.x, k.region.right) for k in keys if k.region.width)
        assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:], strict=False))
        await pilot.resize_terminal(PALETTE_MIN_WIDTH + 20, 36)
        await pilot.pause(0.3)
        assert len(_palette(app)) == 1
        await pilot.resize_terminal(80, 24)
        await pilot.pause(0.3)
        assert not _palette(app)
