"""Typed messages from phase workers (any thread) to the UI."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from todobox_deploy.engine.events import PhaseOutcome, Stream


@dataclass
class LogBatch(Message):
    """A batch of complete output lines from one phase. Never replaceable: dropping one loses log data."""

    phase_id: str
    stream: Stream
    lines: list[str]


@dataclass
class PhaseStarted(Message):
    """A phase worker has begun running ``phase_id``."""

    phase_id: str


@dataclass
class PhaseFinished(Message):
    """A phase ended (ok, warning, failed, cancelled or crashed)."""

    phase_id: str
    outcome: PhaseOutcome
