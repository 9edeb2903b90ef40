"""Full per-phase transcripts on disk (the log pane keeps only a bounded window in memory)."""

from __future__ import annotations

from pathlib import Path
from typing import TextIO


class TranscriptWriter:
    """Appends each phase's formatted lines to ``<directory>/<phase_id>.log``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._files: dict[str, TextIO] = {}

    def path(self, phase_id: str) -> Path:
        return self.directory / f"{phase_id}.log"

    def __call__(self, phase_id: str, lines: list[str]) -> None:
        handle = self._files.get(phase_id)
        if handle is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            handle = self._files[phase_id] = self.path(phase_id).open("a", encoding="utf-8")
        handle.write("\n".join(lines))
        handle.write("\n")

    def flush(self) -> None:
        for handle in self._files.values():
            handle.flush()

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()
        self._files.clear()
