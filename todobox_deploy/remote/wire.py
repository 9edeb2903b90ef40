"""Two drop-ins for paramiko internals that make bulk output cheaper; nothing else of paramiko is changed.

paramiko reads each SSH packet with at least two socket reads (its first block, then the rest), each a
``poll`` plus a ``recv`` that drop and retake the GIL, and stores channel data in an ``array`` that is copied
in and copied out again. With output arriving as 32 KiB packets that is ~130 system calls and four copies
per MiB in the transport thread, competing for the GIL with the thread that consumes the output.

- ``BufferedPacketizer`` (passed as ``Transport(packetizer_class=...)``) serves the packetizer's reads from
  a buffer filled by big ``recv_into`` calls: the same bytes in the same order, a few calls per MiB.
  Decryption, MAC checks and the rest of ``Packetizer`` are paramiko's own.
- ``ChunkPipe`` replaces a channel's ``BufferedPipe`` (``install_pipes``, before the command starts): the
  received bytes objects are queued as they are, and a reader gets them back joined.

``tests/remote/test_wire.py`` checks both against arbitrary fragmentation; the exec tests compare whole
outputs with OpenSSH's byte for byte through them.
"""

from __future__ import annotations

import collections
import errno
import threading
import time
from typing import Any

import paramiko
from paramiko.buffered_pipe import PipeTimeout
from paramiko.packet import NeedRekeyException, Packetizer

READ_SIZE = 256 * 1024

__all__ = ["READ_SIZE", "BufferedPacketizer", "ChunkPipe", "install_pipes"]


class BufferedPacketizer(Packetizer):
    """A ``Packetizer`` whose ``read_all``/``readline`` come from one receive buffer.

    Only the transport thread reads (as with paramiko's own); the error handling of a read (timeouts
    that check for a closed transport, a pending rekey and keepalives; EOF) is the original's.
    """

    def __init__(self, sock: Any) -> None:
        super().__init__(sock)
        self._sock = sock
        self._recv_into = getattr(sock, "recv_into", None)  # a ProxyJump channel has only recv
        self._buf = bytearray(READ_SIZE)
        self._view = memoryview(self._buf)
        self._start = 0  # unread bytes are _buf[_start:_end]
        self._end = 0

    @property
    def buffered(self) -> int:
        """Bytes received from the socket and not read yet."""
        return self._end - self._start

    def read_all(self, n: int, check_rekey: bool = False) -> bytes:
        if self._end - self._start < n:
            self._fill(n, check_rekey)
        start = self._start
        self._start = start + n
        return bytes(self._view[start : start + n])

    def readline(self, timeout: float) -> str:
        """A line of the server's banner (before any packet), within ``timeout`` like the original."""
        end = time.monotonic() + timeout
        while (i := self._buf.find(b"\n", self._start, self._end)) < 0:
            try:
                if self._receive(1) == 0:
                    raise EOFError()
            except TimeoutError:
                if self.closed:
                    raise EOFError() from None
                if time.monotonic() >= end:
                    raise
        line = bytes(self._view[self._start : i])
        self._start = i + 1
        return paramiko.util.u(line[:-1] if line.endswith(b"\r") else line)

    def _fill(self, n: int, check_rekey: bool) -> None:
        while self._end - self._start < n:
            if self.handshake_timed_out():
                raise EOFError()
            try:
                got = self._receive(n)
            except TimeoutError:
                pass
            except OSError as exc:
                if exc.errno != errno.EAGAIN:  # a Linux quirk the original also treats as a timeout
                    if self.closed:
                        raise EOFError() from None
                    raise
            else:
                if got == 0:
                    raise EOFError()
                continue
            if self.closed:
                raise EOFError()
            if check_rekey and self._end == self._start and self.need_rekey():
                raise NeedRekeyException()
            self._check_keepalive()  # type: ignore[attr-defined]  # paramiko's, not in its stubs

    def _make_room(self, n: int) -> None:
        """Room for ``n`` unread bytes from ``_start`` and a big read after ``_end``."""
        have = self._end - self._start
        if len(self._buf) < n:
            new = bytearray(max(n, 2 * len(self._buf)))
            new[:have] = self._view[self._start : self._end]
            self._buf, self._view = new, memoryview(new)
        elif have == 0 or len(self._buf) - self._start < n or len(self._buf) - self._end < READ_SIZE // 4:
            self._buf[:have] = bytes(self._view[self._start : self._end])  # a copy: the ranges may overlap
        else:
            return
        self._start, self._end = 0, have

    def _receive(self, n: int) -> int:
        self._make_room(n)
        if self._recv_into is not None:
            got: int = self._recv_into(self._view[self._end :])
        else:
            data = self._sock.recv(len(self._buf) - self._end)
            got = len(data)
            self._buf[self._end : self._end + got] = data
        self._end += got
        return got


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
