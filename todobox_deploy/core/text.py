"""Text from the host is hostile: make it inert before it reaches a terminal, a widget or a file.

Control characters but tab are shown as ``\\xNN`` (escape sequences, a lone ``\\r``); line and paragraph
separators and bidi controls as ``\\uNNNN`` (a widget would split a line at U+2028; bidi controls reorder
what a terminal shows).
"""

from __future__ import annotations

import re

_FORMAT = "\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069"
_UNSAFE = re.compile(f"[\x00-\x08\x0a-\x1f\x7f-\x9f{_FORMAT}]")


def _escape(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def inert(text: str) -> str:
    """``text`` with nothing a terminal or a widget would obey: every such character shown as an escape."""
    return _UNSAFE.sub(_escape, text) if _UNSAFE.search(text) else text
