"""An append-only, fsync'd JSON-lines record of the session: who confirmed what, when, on which evidence.

One file per deploy session. Each line is one event; a crash loses at most the event being written.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Journal:
    """Append events to ``path``; safe to call from several threads."""

    def __init__(self, path: Path, *, operator: str, host: str) -> None:
        self.path = path
        self.operator = operator
        self.host = host
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)

    def record(self, event: str, **fields: Any) -> dict[str, Any]:
        """Write one event; ``operator``, ``host`` and a UTC timestamp are added."""
        entry: dict[str, Any] = {
            "ts": utc_now(),
            "event": event,
            "operator": self.operator,
            "host": self.host,
        }
        entry.update(fields)
        line = json.dumps(entry, sort_keys=True, default=str) + "\n"
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, line.encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)
        return entry

    def __call__(self, event: Mapping[str, Any]) -> None:
        """Record an event given as a mapping with an ``event`` key (the shape the TUI hands over)."""
        fields = dict(event)
        name = str(fields.pop("event", "note"))
        self.record(name, **fields)

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        with self.path.open(encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]
