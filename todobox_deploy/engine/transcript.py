"""The one transcript writer: every line a phase streams, time-stamped, in ``<dir>/<phase>.log``.

The log pane keeps a bounded window in memory; the transcript on disk keeps everything: the exact text,
escaped (``core.text.inert``: a control character but tab is written as ``\\xNN``, so that viewing the file
with ``cat`` or ``less -R`` obeys nothing the host sent). A line that did not end with a newline on the
host (``Unterminated``) is followed by a ``\\ no newline`` note rather than given one silently.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from todobox_deploy.core.streams import OutputSink, Stream, Unterminated
from todobox_deploy.core.text import inert

PREFIX: dict[Stream, str] = {"stdout": "  ", "stderr": "! ", "info": "# ", "error": "!! "}
NO_NEWLINE = "\\ no newline at the end of the line above on the host"


class Transcript:
    """An open transcript file for one phase run (appended to when the phase runs again)."""

    def __init__(self, directory: Path, phase_id: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"{phase_id}.log"
        self._fh: TextIO = self.path.open("a", encoding="utf-8")

    def write_lines(self, stream: Stream, lines: list[str]) -> None:
        stamp = datetime.now(UTC).strftime("%H:%M:%S")
        prefix, note = PREFIX[stream], f"{stamp} {PREFIX['info']}{NO_NEWLINE}\n"
        joined = "".join(lines)
        escape = inert if inert(joined) is not joined else str  # one scan for a batch that needs nothing
        self._fh.writelines(
            f"{stamp} {prefix}{escape(line)}\n" + (note if isinstance(line, Unterminated) else "")
            for line in lines
        )
        self._fh.flush()

    def write_text(self, text: str) -> None:
        """Free text (a traceback): its own line breaks kept, every other control character escaped."""
        self._fh.write("\n".join(inert(part) for part in text.split("\n")))
        self._fh.flush()

    def tee(self, sink: OutputSink) -> OutputSink:
        """A sink that writes each batch here, then passes it on."""

        def both(stream: Stream, lines: list[str]) -> None:
            self.write_lines(stream, lines)
            sink(stream, lines)

        return both

    def close(self) -> None:
        self._fh.close()
