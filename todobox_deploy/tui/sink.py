"""The thread-side end of the log stream: an OutputSink that posts LogBatch messages with backpressure.

At most ``max_inflight`` batches are queued to the UI at a time; a fast producer (the SSH reader) blocks
until the UI has ingested one, so key presses never wait behind a flood of log messages.
"""

from __future__ import annotations

import threading

from textual.message_pump import MessagePump

from todobox_deploy.core.streams import OutputSink, Stream
from todobox_deploy.tui.messages import LogBatch


class InflightGate:
    """A counting gate: ``enter`` blocks while ``limit`` batches are unacknowledged (unless cancelled)."""

    def __init__(self, limit: int) -> None:
        self._slots = threading.Semaphore(limit)

    def enter(self, cancel: threading.Event | None = None) -> None:
        while not self._slots.acquire(timeout=0.1):
            if cancel is not None and cancel.is_set():
                return  # don't block a cancelled phase; the batch is still delivered

    def ack(self) -> None:
        self._slots.release()


def make_log_sink(
    target: MessagePump, phase_id: str, cancel: threading.Event | None = None, max_inflight: int = 4
) -> OutputSink:
    """An OutputSink (call it from any thread) that posts each non-empty batch to ``target``."""
    gate = InflightGate(max_inflight)

    def sink(stream: Stream, lines: list[str]) -> None:
        if not lines:
            return
        gate.enter(cancel)
        target.post_message(LogBatch(phase_id, stream, list(lines), ack=gate.ack))

    return sink
