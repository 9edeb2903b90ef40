"""Typed messages from phase workers (any thread) to the UI.

Plain classes, not dataclasses: the wizard imports them before its first frame, and each dataclass costs
about half a millisecond to create on import (tests/bench_first_frame.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:
    from todobox_deploy.core.outcome import PhaseOutcome
    from todobox_deploy.core.streams import Stream
    from todobox_deploy.engine.docs import DocsReading


class LogBatch(Message):
    """A batch of complete output lines from one phase. Never replaceable: dropping one loses log data."""

    def __init__(
        self, phase_id: str, stream: Stream, lines: list[str], ack: Callable[[], None] | None = None
    ) -> None:
        super().__init__()
        self.phase_id = phase_id
        self.stream = stream
        self.lines = lines
        self.ack = ack
        """Called by the receiver once the lines are taken (releases the sender's backpressure slot)."""


class PhaseStarted(Message):
    """A phase worker has begun running ``phase_id``."""

    def __init__(self, phase_id: str) -> None:
        super().__init__()
        self.phase_id = phase_id


class PhaseFinished(Message):
    """A phase ended (ok, warning, failed, cancelled or crashed)."""

    def __init__(self, phase_id: str, outcome: PhaseOutcome) -> None:
        super().__init__()
        self.phase_id = phase_id
        self.outcome = outcome


class DocsRead(Message):
    """A docs reading (``engine.docs.read_docs``) finished in a worker thread."""

    def __init__(self, key: tuple[str, str | None, str | None], reading: DocsReading) -> None:
        super().__init__()
        self.key = key  # (item id, commit_target, commit_before) it was read for
        self.reading = reading
