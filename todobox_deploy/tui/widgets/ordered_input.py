"""An :class:`~textual.widgets.Input` that applies keys in the order they were typed.

Textual's Input inserts a printable key when the key reaches it, but runs its own bound keys (enter,
backspace, ctrl+u, the arrows, ...) only after the key event has bubbled up to the app through every
ancestor's message queue. Keys that arrive together (type-ahead, a slow terminal link delivering several
keys in one read) are then applied out of order: ``ctrl+u stop_app enter`` submits ``""``, the ctrl+u landing
after the name (Textual issue #6605). Here the input runs its own bindings as soon as a key reaches it.
"""

from __future__ import annotations

from textual import events
from textual.widgets import Input


class OrderedInput(Input):
    """An Input whose own key bindings run in order with the characters typed around them."""

    async def _on_key(self, event: events.Key) -> None:
        if event.is_printable:
            return  # Input's handler, next in the MRO, inserts it
        bindings = self._bindings.copy()
        if self.app._keymap:
            bindings.apply_keymap(self.app._keymap)
        for binding in bindings.key_to_bindings.get(event.key, ()):
            # Priority bindings were tried before the key was forwarded here; an action this input
            # refuses (check_action) leaves the key to its ancestors, as the app's own lookup would.
            if not binding.priority and await self.app.run_action(binding.action, self):
                event.stop()
                event.prevent_default()  # neither Input's nor Widget's handler sees it again
                return
