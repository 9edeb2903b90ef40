"""Typed messages from phase workers (any thread) to the UI."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from textual.message import Message

from todobox_deploy.core.outcome import PhaseOutcome
from todobox_deploy.core.streams import Stream
from todobox_deploy.engine.docs import DocsReading


@dataclass
class LogBatch(Message):
    """A batch of complete output lines from one phase. Never replaceable: dropping one loses log data."""

    phase_id: str
    stream: Stream
    lines: list[str]
    ack: Callable[[], None] | None = field(default=None, repr=False)
    """Called by the receiver once the lines are taken (releases the sender's backpressure slot)."""


@dataclass
class PhaseStarted(Message):
    """A phase worker has begun running ``phase_id``."""

    phase_id: str


@dataclass
class PhaseFinished(Message):
    """A phase ended (ok, warning, failed, cancelled or crashed)."""

    phase_id: str
    outcome: PhaseOutcome


@dataclass
class DocsRead(Message):
    """A docs reading (``engine.docs.read_docs``) finished in a worker thread."""

    key: tuple[str, str | None, str | None]  # (item id, commit_target, commit_before) it was read for
    reading: DocsReading
