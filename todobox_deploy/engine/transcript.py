"""The one transcript writer: every line a phase streams, time-stamped, in ``<dir>/<phase>.log``.

The log pane keeps a bounded window in memory; the transcript on disk keeps everything.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from todobox_deploy.core.streams import OutputSink, Stream

PREFIX: dict[Stream, str] = {"stdout": "  ", "stderr": "! ", "info": "# ", "error": "!! "}


class Transcript:
    """An open transcript file for one phase run (appended to when the phase runs again)."""

    def __init__(self, directory: Path, phase_id: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"{phase_id}.log"
        self._fh: TextIO = self.path.open("a", encoding="utf-8")

    def write_lines(self, stream: Stream, lines: list[str]) -> None:
        stamp = datetime.now(UTC).strftime("%H:%M:%S")
        self._fh.writelines(f"{stamp} {PREFIX[stream]}{line}\n" for line in lines)
        self._fh.flush()

    def write_text(self, text: str) -> None:
        self._fh.write(text)
        self._fh.flush()

    def tee(self, sink: OutputSink) -> OutputSink:
        """A sink that writes each batch here, then passes it on."""

        def both(stream: Stream, lines: list[str]) -> None:
            self.write_lines(stream, lines)
            sink(stream, lines)

        return both

    def close(self) -> None:
        self._fh.close()
