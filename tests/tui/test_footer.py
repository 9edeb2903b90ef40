"""The footer: the essential keys first and never cut off at 80 columns, the palette's hint only where it
fits, a click on a hint presses its key."""

from __future__ import annotations

from collections.abc import Callable

from todobox_deploy.tui.app import DeployApp
from todobox_deploy.tui.screens.help import HelpScreen
from todobox_deploy.tui.widgets.footer import ESSENTIAL, DeployFooter

from .conftest import DEMO_CONFIG, wait_for
from .test_wizard import wizard


def _footer(app: DeployApp) -> DeployFooter:
    return wizard(app).query_one(DeployFooter)


def _line(app: DeployApp) -> str:
    return str(_footer(app).render())


async def test_80x24_shows_the_essential_keys_first_and_whole(build_app: Callable[..., DeployApp]) -> None:
    app = build_app(config=DEMO_CONFIG)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.2)
        footer = _footer(app)
        shown = [hint.action for hint in footer.shown()]
        assert shown[: len(ESSENTIAL)] == list(ESSENTIAL)
        line = _line(app)
        for action, words in (("quit", "^q Quit"), ("show_signoff", "s Sign-off"), ("show_keys", "? Keys")):
            span = footer.region_of(action)
            assert span is not None and span[1] <= 80, action
            assert line[span[0] : span[1]].strip() == words
        for description in ("Run next", "Confirm"):  # the wizard's own keys follow, still on screen
            assert description in line[:80], description


async def test_narrow_footer_with_the_log_focused_leaves_the_palette_hint_out(
    build_app: Callable[..., DeployApp],
) -> None:
    """At 80 columns with the log pane focused the hints overflow: they are cut at the right edge and the
    palette's hint (drawn at the right edge only when everything fits) is left out; it comes back when
    the terminal is wide again."""
    app = build_app(config=DEMO_CONFIG)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.2)
        wizard(app).log_pane.log_widget.focus()
        await wait_for(pilot, lambda: "toggle_follow" in [h.action for h in _footer(app).shown()])
        assert _footer(app).region_of("command_palette") is None
        assert "palette" not in _line(app)
        await pilot.resize_terminal(200, 36)
        await wait_for(pilot, lambda: _footer(app).region_of("command_palette") is not None)
        span = _footer(app).region_of("command_palette")
        assert span is not None and span[1] == 200  # at the right edge
        assert "^p palette" in _line(app)[span[0] : span[1]]
        await pilot.resize_terminal(80, 24)
        await wait_for(pilot, lambda: _footer(app).region_of("command_palette") is None)


async def test_a_hint_shows_its_tooltip_and_a_click_presses_its_key(
    build_app: Callable[..., DeployApp],
) -> None:
    app = build_app(config=DEMO_CONFIG)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause(0.2)
        span = _footer(app).region_of("show_keys")
        assert span is not None
        await pilot.hover(DeployFooter, offset=(span[0] + 1, 0))
        assert _footer(app).tooltip == "Keys"  # the binding's tooltip, else its description
        run = _footer(app).region_of("run_phase")
        assert run is not None
        await pilot.hover(DeployFooter, offset=(run[0] + 1, 0))
        assert _footer(app).tooltip == "Run the selected automated phase"
        await pilot.click(DeployFooter, offset=(span[0] + 1, 0))
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
