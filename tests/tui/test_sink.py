"""The thread-side sink: LogBatch messages with bounded in-flight batches (backpressure)."""

from __future__ import annotations

import threading
import time
from typing import Any, cast

from textual.message_pump import MessagePump

from todobox_deploy.tui.messages import LogBatch
from todobox_deploy.tui.sink import InflightGate, make_log_sink


class Target:
    def __init__(self) -> None:
        self.posted: list[LogBatch] = []

    def post_message(self, message: Any) -> bool:
        self.posted.append(message)
        return True


def test_sink_blocks_until_the_ui_acks() -> None:
    target = Target()
    sink = make_log_sink(cast(MessagePump, target), "migrate", max_inflight=2)
    sink("stdout", ["a"])
    sink("stderr", ["b"])
    sink("stdout", [])  # empty batches are not posted
    third = threading.Thread(target=sink, args=("stdout", ["c"]))
    third.start()
    time.sleep(0.3)
    assert third.is_alive() and len(target.posted) == 2  # blocked: two batches in flight
    ack = target.posted[0].ack
    assert ack is not None
    ack()
    third.join(2)
    assert not third.is_alive()
    assert [(m.phase_id, m.stream, m.lines) for m in target.posted] == [
        ("migrate", "stdout", ["a"]),
        ("migrate", "stderr", ["b"]),
        ("migrate", "stdout", ["c"]),
    ]
    assert not LogBatch("p", "stdout", []).can_replace(LogBatch("p", "stdout", []))


def test_gate_does_not_block_a_cancelled_phase() -> None:
    gate = InflightGate(1)
    cancel = threading.Event()
    gate.enter(cancel)
    cancel.set()
    started = time.perf_counter()
    gate.enter(cancel)
    assert time.perf_counter() - started < 1.0
