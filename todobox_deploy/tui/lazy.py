"""Type checks against screens that load on first use (so the first frame does not import them)."""

from __future__ import annotations

import sys


def is_loaded_instance(obj: object, module: str, name: str) -> bool:
    """``isinstance(obj, module.name)`` without importing ``module``: if it is not imported yet, nothing
    can be an instance of its classes."""
    found = sys.modules.get(module)
    cls = getattr(found, name, None) if found is not None else None
    return isinstance(cls, type) and isinstance(obj, cls)


def is_signoff(screen: object) -> bool:
    return is_loaded_instance(screen, "todobox_deploy.tui.screens.signoff", "SignOffScreen")


def is_gate(screen: object) -> bool:
    return is_loaded_instance(screen, "todobox_deploy.tui.screens.gates", "GateModal")
