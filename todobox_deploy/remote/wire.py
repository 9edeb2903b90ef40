"""A drop-in for paramiko's channel buffer that makes bulk output cheaper; nothing else of paramiko changes.

paramiko's ``BufferedPipe`` copies every received packet into an ``array`` and copies it out again on
``recv``, and a partial read moves everything left in it (``del buffer[:n]``): with output arriving as
32 KiB packets and read in 64 KiB pieces that is two copies of each byte plus a move of the backlog per
read, in the transport thread and the reader, both holding the GIL. ``ChunkPipe`` (``install_pipes``, on a
new channel before its command starts) queues the received bytes objects as they are and hands them back
joined. ``tests/remote/test_wire.py`` checks it against arbitrary feeding and reading; the exec tests
compare whole outputs through it with OpenSSH's byte for byte.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Any

import paramiko
from paramiko.buffered_pipe import PipeTimeout

__all__ = ["ChunkPipe", "install_pipes"]


class ChunkPipe:
    """What paramiko's ``BufferedPipe`` does for a channel (fed by the transport thread, read by the
    channel's reader, an optional event set while data is ready or the pipe closed), keeping the fed
    bytes objects in a queue instead of copying them into and out of an array."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cv = threading.Condition(self._lock)
        self._chunks: collections.deque[bytes] = collections.deque()
        self._size = 0
        self._event: Any = None
        self._closed = False

    def __len__(self) -> int:
        return self._size

    def set_event(self, event: Any) -> None:
        with self._lock:
            self._event = event
            if self._closed or self._size:
                event.set()
            else:
                event.clear()

    def feed(self, data: bytes) -> None:
        if not data:
            return
        with self._lock:
            self._chunks.append(bytes(data))
            self._size += len(data)
            if self._size == len(data):  # was empty: a reader may be waiting
                if self._event is not None:
                    self._event.set()
                self._cv.notify_all()

    def read_ready(self) -> bool:
        return self._size > 0

    def read(self, nbytes: int, timeout: float | None = None) -> bytes:
        """Up to ``nbytes`` (at least one), waiting up to ``timeout`` (PipeTimeout); ``b""`` once closed."""
        with self._lock:
            if not self._size:
                self._wait(timeout)
                if not self._size:
                    return b""
            out = self._take(nbytes)
            self._size -= len(out)
            if not self._size and self._event is not None and not self._closed:
                self._event.clear()
            return out

    def _wait(self, timeout: float | None) -> None:
        if self._closed:
            return
        if timeout == 0.0:
            raise PipeTimeout()
        end = None if timeout is None else time.monotonic() + timeout
        while not self._size and not self._closed:
            left = None if end is None else end - time.monotonic()
            if left is not None and left <= 0:
                raise PipeTimeout()
            self._cv.wait(left)

    def _take(self, nbytes: int) -> bytes:
        chunks = self._chunks
        first = chunks[0]
        if len(first) >= nbytes:
            if len(first) == nbytes:
                return chunks.popleft()
            chunks[0] = first[nbytes:]
            return first[:nbytes]
        parts: list[bytes] = []
        n = 0
        while chunks and n + len(chunks[0]) <= nbytes:
            part = chunks.popleft()
            parts.append(part)
            n += len(part)
        if chunks and n < nbytes:
            part = chunks[0]
            parts.append(part[: nbytes - n])
            chunks[0] = part[nbytes - n :]
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def empty(self) -> bytes:
        with self._lock:
            out = b"".join(self._chunks)
            self._chunks.clear()
            self._size = 0
            if self._event is not None and not self._closed:
                self._event.clear()
            return out

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._cv.notify_all()
            if self._event is not None:
                self._event.set()


def install_pipes(chan: paramiko.Channel) -> None:
    """Give a new channel ChunkPipes for stdout and stderr (before its command starts and before
    ``fileno()``, which hands the pipes their event)."""
    if len(chan.in_buffer) or len(chan.in_stderr_buffer) or getattr(chan, "_pipe", None) is not None:
        raise RuntimeError("install_pipes: the channel is already in use")
    chan.in_buffer = ChunkPipe()  # type: ignore[assignment]
    chan.in_stderr_buffer = ChunkPipe()  # type: ignore[assignment]
