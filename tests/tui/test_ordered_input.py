"""Keys that reach a gate's field together (type-ahead, several keys in one terminal read) are applied in
the order they were typed: an editing key (ctrl+u, backspace, enter) never lands after the characters
typed after it. With Textual's plain Input, ``ctrl+u stop_app enter`` in one burst submitted ``""``."""

from __future__ import annotations

from typing import Any

from textual import events
from textual.app import App, ComposeResult
from textual.screen import Screen
from textual.widgets import Input, Label

from todobox_deploy.tui.screens.gates import DestructiveConfirm, SkipReason

from .conftest import wait_for

NAMES = {"_": "underscore", " ": "space"}


def burst(app: App[Any], *keys: str) -> None:
    """Post every key at once, as the driver does for the keys of one read: no pause in between.
    A single character is typed; anything longer is a key name (``ctrl+u``, ``backspace``, ``enter``)."""
    for key in keys:
        if len(key) == 1:
            app.post_message(events.Key(NAMES.get(key, key), key))
        else:
            app.post_message(events.Key(key, {"enter": "\r", "ctrl+u": "\x15"}.get(key)))


class GateHost(App[None]):
    """A bare app that pushes one gate and records what it was dismissed with."""

    def __init__(self, gate: Screen[Any]) -> None:
        super().__init__()
        self.gate, self.answers = gate, list[Any]()

    def compose(self) -> ComposeResult:
        yield Label("under the gate")

    def on_mount(self) -> None:
        self.push_screen(self.gate, self.answers.append)


async def test_a_burst_at_the_stop_gate_clears_types_and_submits_in_order() -> None:
    gate = DestructiveConfirm("stop_app", "Stop the app")
    app = GateHost(gate)
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: isinstance(app.focused, Input))
        burst(app, "n", "n", "ctrl+u", *"stop_apx", "backspace", "p", "enter")
        error = gate.query_one("#destructive-error")
        await wait_for(pilot, lambda: bool(app.answers) or "That is not" in str(error.render()))
        assert app.answers == [True], f"submitted {gate.query_one(Input).value!r}"


async def test_a_wrong_name_in_a_burst_is_refused_and_escape_still_goes_back() -> None:
    gate = DestructiveConfirm("stop_app", "Stop the app")
    app = GateHost(gate)
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: isinstance(app.focused, Input))
        burst(app, *"stop_app", "backspace", "enter")
        error = gate.query_one("#destructive-error")
        await wait_for(pilot, lambda: "That is not stop_app" in str(error.render()))
        assert not app.answers and gate.query_one(Input).value == "stop_ap"
        burst(app, "p", "escape")  # a key the field does not bind still reaches the gate's own binding
        await wait_for(pilot, lambda: bool(app.answers))
        assert app.answers == [False]


async def test_a_skip_reason_typed_in_a_burst_is_journaled_as_typed() -> None:
    app = GateHost(SkipReason("notify", "Notify"))
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: isinstance(app.focused, Input))
        burst(app, *"old text", "ctrl+u", *"mail relay dowx", "backspace", "n", "enter")
        await wait_for(pilot, lambda: bool(app.answers))
        assert app.answers == ["mail relay down"]
