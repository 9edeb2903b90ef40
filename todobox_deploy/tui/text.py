"""Text from the host, made inert for each way the TUI shows text (built on ``core.text.inert``).

- ``for_display``: plain-text widgets (rich ``Text``, Textual ``Content``, ``Log`` lines, notifications
  sent with ``markup=False``): control characters but tab as ``\\xNN`` (escape sequences, a lone
  ``\\r``); line and paragraph separators and bidi controls as ``\\uNNNN`` (``Log`` would split a line
  at U+2028, and bidi controls reorder what is shown).
- ``for_markup``: text inside Textual content markup: ``for_display``, and ``[`` never opens a tag.
- ``for_markdown``: text inside the details panel's Markdown: ``for_display``, and every ASCII punctuation
  character backslash-escaped (no emphasis, link, code span, HTML, entity or table cell border).
- ``for_markdown_document``: a whole Markdown document (the docs of the commit) rendered as Markdown: its
  lines kept, every control character in them inert.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from todobox_deploy.core.text import inert

_UNSAFE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")


def for_display(text: str) -> str:
    """``text`` with nothing a terminal or a widget would obey: every such character shown as an escape."""
    return inert(text)


def lines_for_display(lines: Sequence[str]) -> list[str]:
    """``for_display`` on a batch of lines (one scan for the common batch that needs nothing)."""
    if not _UNSAFE.search("".join(lines)):
        return list(lines)
    return [for_display(line) for line in lines]


def for_markup(text: str) -> str:
    """``text`` to embed in Textual content markup: shown literally, ``[red]`` included."""
    return for_display(text).replace("[", "\\[")


def for_markdown(text: str) -> str:
    """``text`` to embed in Markdown (a paragraph or a table cell): shown literally, one line."""
    return _PUNCTUATION.sub(r"\\\1", for_display(text))


def for_markdown_document(text: str) -> str:
    """A Markdown document from the host, to be rendered as Markdown: its line structure kept (CRLF read
    as a line end), every other control character (escapes, a lone ``\\r``, U+2028, bidi) made inert."""
    return "\n".join(for_display(line.removesuffix("\r")) for line in text.split("\n"))
