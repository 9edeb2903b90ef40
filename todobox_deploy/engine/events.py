"""The vocabulary shared by the engine and any front end: output sinks, statuses and outcomes."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Literal, Protocol

Stream = Literal["stdout", "stderr", "info", "error"]

OutputSink = Callable[[Stream, list[str]], None]
"""Receives complete lines (no trailing newline) in batches, each batch tagged with its stream.

Called from worker threads; a front end must only hand the batch over (e.g. post a message)."""


class PhaseStatus(Enum):
    PENDING = "pending"
    RUNNING = "running"
    OK = "ok"
    WARNING = "warning"  # ran, but the evidence needs the operator's attention
    FAILED = "failed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"

    @property
    def finished(self) -> bool:
        return self not in (PhaseStatus.PENDING, PhaseStatus.RUNNING)


@dataclass(frozen=True)
class PhaseOutcome:
    """What a phase concluded: a status, a one-line summary, and the facts it established."""

    status: PhaseStatus
    summary: str
    facts: tuple[tuple[str, str], ...] = field(default=())

    def fact(self, key: str) -> str | None:
        return dict(self.facts).get(key)


class PhaseRunner(Protocol):
    """Runs checklist phases by id. Blocking: call it from a worker thread."""

    def can_run(self, phase_id: str) -> bool: ...

    def run(self, phase_id: str, sink: OutputSink, cancel: threading.Event) -> PhaseOutcome: ...

    def close(self) -> None: ...
