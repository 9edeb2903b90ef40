"""Turn raw byte chunks into batches of complete lines for an ``OutputSink``."""

from __future__ import annotations

import codecs
import threading
import time

from todobox_deploy.engine.events import OutputSink, Stream

from .secrets import Secrets, StreamRedactor

BATCH_LINES = 1000
BATCH_SECONDS = 0.05


class LineSplitter:
    """Incremental: redact bytes, decode UTF-8 across chunk boundaries, split into lines."""

    def __init__(self, secrets: Secrets | None = None) -> None:
        self._redactor = StreamRedactor(secrets)
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._partial = ""

    def feed(self, data: bytes) -> list[str]:
        return self._split(self._decoder.decode(self._redactor.feed(data)))

    def finish(self) -> list[str]:
        """Flush everything, including a last line without a trailing newline."""
        lines = self._split(self._decoder.decode(self._redactor.flush(), final=True))
        if self._partial:
            lines.append(self._partial)
            self._partial = ""
        return lines

    def _split(self, text: str) -> list[str]:
        if not text:
            return []
        text = self._partial + text
        parts = text.split("\n")
        self._partial = parts.pop()
        if "\r" in text:  # CRLF output: drop the CR (the common case skips this per-line pass)
            return [p[:-1] if p.endswith("\r") else p for p in parts]
        return parts


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
