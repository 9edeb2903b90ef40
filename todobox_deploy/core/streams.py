"""Output streams and the sink that receives a command's lines."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, Protocol

Stream = Literal["stdout", "stderr", "info", "error"]
HOST_STREAMS: frozenset[Stream] = frozenset({"stdout", "stderr"})  # what the host said, not us

OutputSink = Callable[[Stream, list[str]], None]
"""Receives complete lines (no trailing newline) in batches, each batch tagged with its stream.

Called from worker threads; a front end must only hand the batch over (e.g. post a message)."""


class Unterminated(str):
    """A line the host did not end with a newline: the output's last line, or a piece of a line longer
    than ``max_line`` (the next line continues it). Equal to its text; a sink that keeps a record
    (the transcript) marks it rather than add a newline that was not there."""

    __slots__ = ()


class CommandOutput(Protocol):
    """What a host command returned: a CommandResult, or one step of a batch."""

    @property
    def exit_status(self) -> int: ...

    @property
    def stdout(self) -> str: ...

    @property
    def stderr(self) -> str: ...


def lines_of(text: str) -> list[str]:
    """Captured output as the log's lines, as the streaming path cuts them: only at ``\\n`` (a lone ``\\r``
    stays in its line, to be shown escaped, never taken for a line break), the ``\\r`` of a CRLF ending
    dropped, a last line without ``\\n`` kept, no empty line added at the end."""
    if not text:
        return []
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]
