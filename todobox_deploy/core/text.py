"""Text from the host is hostile: make it inert before it reaches a terminal."""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def inert(text: str) -> str:
    """``text`` with every control character but tab shown as ``\\xNN`` (escape sequences, ``\\r``)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
