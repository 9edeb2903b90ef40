"""What a phase concluded: its status, a one-line summary and the evidence it showed."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


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
    """A status, a one-line summary, and the evidence (label, value) pairs the operator confirms."""

    status: PhaseStatus
    summary: str
    facts: tuple[tuple[str, str], ...] = field(default=())

    def fact(self, key: str) -> str | None:
        return dict(self.facts).get(key)
