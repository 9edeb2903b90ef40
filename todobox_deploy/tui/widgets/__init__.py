"""Reusable widgets: the checklist tree and the batched log pane."""
