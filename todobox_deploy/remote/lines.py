"""Turn raw byte chunks into batches of complete lines for an ``OutputSink``."""

from __future__ import annotations

import threading
import time

from todobox_deploy.core.streams import OutputSink, Stream, Unterminated

from .secrets import MASK, SecretFinder, Secrets, probes

BATCH_LINES = 1000
BATCH_SECONDS = 0.05


class LineSplitter:
    """Incremental: cut raw bytes into complete lines, redact and decode each run of whole lines.

    Secrets never contain a newline (see ``Secrets.add``), so redacting whole lines is boundary-safe
    and a multi-byte character is never cut. A line longer than ``max_line`` bytes is emitted in
    pieces (``Unterminated``), keeping back enough bytes that no secret (or character) is split.
    Nothing is dropped: a lone ``\\r`` stays in its line, bytes that are not UTF-8 become ``\\xNN``
    text (front ends make control characters visible); only the ``\\r`` of a CRLF line ending goes.
    ``complete_bytes`` counts the raw bytes already emitted: the exact offset to resume a stream from.
    """

    def __init__(self, secrets: Secrets | None = None, *, max_line: int = 1 << 20) -> None:
        self._patterns = secrets.patterns if secrets else []
        self._finder = SecretFinder(probes(self._patterns))
        self._keep = max((len(p) for p in self._patterns), default=1) - 1
        self._max_line = max_line
        self._buf = b""
        self.complete_bytes = 0

    def _text(self, data: bytes) -> str:
        if self._finder and self._finder.found_in(data):
            for p in self._patterns:
                data = data.replace(p, MASK)
        return data.decode("utf-8", "backslashreplace")

    def feed(self, data: bytes) -> list[str]:
        buf = self._buf + data
        end = buf.rfind(b"\n") + 1
        if end == 0:
            self._buf = buf
            return self._force_split() if len(buf) > self._max_line else []
        self._buf = buf[end:]
        self.complete_bytes += end
        text = self._text(buf[: end - 1])
        lines = text.split("\n")
        if "\r" in text:  # CRLF output: drop the CR (the common case skips this per-line pass)
            lines = [line[:-1] if line.endswith("\r") else line for line in lines]
        return lines

    def _force_split(self) -> list[str]:
        buf = self._buf
        for p in self._patterns:  # every whole secret is masked; one can only straddle the last _keep bytes
            buf = buf.replace(p, MASK)
        cut = len(buf) - max(self._keep, 3)  # 3: the tail may be an incomplete UTF-8 character
        low = cut - 3  # a character has at most 3 continuation bytes (binary data may have more)
        while cut > low and buf[cut] & 0xC0 == 0x80:  # cut before a character's first byte
            cut -= 1
        self.complete_bytes += len(self._buf) - (len(buf) - cut)
        self._buf = buf[cut:]
        return [Unterminated(buf[:cut].decode("utf-8", "backslashreplace"))]

    def finish(self) -> list[str]:
        """Flush everything, including a last line without a trailing newline (``Unterminated``)."""
        rest, self._buf = self._buf, b""
        self.complete_bytes += len(rest)
        return [Unterminated(self._text(rest))] if rest else []


class LineBatcher:
    """Per-stream splitters plus batching: a sink call per ~1000 lines or ~50 ms, whichever first.

    Thread-safe; ``flush()`` sends what is pending; ``close()`` also flushes partial last lines.
    """

    def __init__(
        self,
        sink: OutputSink,
        secrets: Secrets | None = None,
        *,
        max_lines: int = BATCH_LINES,
        max_delay: float = BATCH_SECONDS,
    ) -> None:
        self._sink = sink
        self._secrets = secrets
        self._max_lines = max_lines
        self._max_delay = max_delay
        self._splitters: dict[Stream, LineSplitter] = {}
        self._pending: list[tuple[Stream, list[str]]] = []
        self._count = 0
        self._since = time.monotonic()
        self._lock = threading.Lock()

    def feed(self, stream: Stream, data: bytes) -> None:
        with self._lock:
            splitter = self._splitters.get(stream)
            if splitter is None:
                splitter = self._splitters[stream] = LineSplitter(self._secrets)
            self._add(stream, splitter.feed(data))
        self.maybe_flush()

    def complete_bytes(self, stream: Stream) -> int:
        """Raw bytes of ``stream`` already emitted as lines (a partial last line is not counted)."""
        splitter = self._splitters.get(stream)
        return splitter.complete_bytes if splitter else 0

    def message(self, stream: Stream, text: str) -> None:
        """Emit an app-generated line (info/error), redacted, in order with the rest."""
        text = self._secrets.redact(text) if self._secrets else text
        with self._lock:
            self._add(stream, text.split("\n"))
        self.flush()

    def maybe_flush(self) -> None:
        if self._count >= self._max_lines or (
            self._pending and time.monotonic() - self._since >= self._max_delay
        ):
            self.flush()

    def flush(self) -> None:
        with self._lock:
            pending, self._pending, self._count = self._pending, [], 0
            self._since = time.monotonic()
        for stream, lines in pending:
            for i in range(0, len(lines), self._max_lines):
                self._sink(stream, lines[i : i + self._max_lines])

    def close(self) -> None:
        with self._lock:
            for stream, splitter in self._splitters.items():
                self._add(stream, splitter.finish())
        self.flush()

    def _add(self, stream: Stream, lines: list[str]) -> None:
        if not lines:
            return
        if not self._pending:
            self._since = time.monotonic()
        if self._pending and self._pending[-1][0] == stream:
            self._pending[-1][1].extend(lines)
        else:
            self._pending.append((stream, list(lines)))
        self._count += len(lines)
