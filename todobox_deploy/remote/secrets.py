"""Known secrets that must never reach any output: ``lines.LineSplitter`` applies them to line streams,
``StreamRedactor`` to raw byte streams (``exec``)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from urllib.parse import quote, quote_plus

from todobox_deploy.core.streams import Stream

MASK = b"[REDACTED]"


class Secrets:
    """A set of secret strings (plus their URL-encoded forms) that must never reach any output."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._values: set[bytes] = set()
        for v in values:
            self.add(v)

    def add(self, value: str) -> None:
        """Register a secret and its URL-encoded variants (as found in DSNs).

        Output is redacted line by line, so a secret containing a newline is registered as its lines.
        """
        if not value:
            return
        for form in {value, quote(value, safe=""), quote_plus(value)}:
            for part in form.replace("\r", "\n").split("\n"):
                if part:
                    self._values.add(part.encode("utf-8"))

    def __bool__(self) -> bool:
        return bool(self._values)

    def __repr__(self) -> str:  # never show the values
        return f"Secrets(<{len(self._values)} hidden>)"

    @property
    def patterns(self) -> list[bytes]:
        """The byte patterns, longest first (so a longer secret is masked before its substrings)."""
        return sorted(self._values, key=len, reverse=True)

    def redact(self, text: str) -> str:
        """Redact a complete string (e.g. an exception message); the rest is kept (a lone surrogate as
        ``\\xNN`` escapes, so that the result can always be written as UTF-8)."""
        data = text.encode("utf-8", "surrogatepass")
        for p in self.patterns:
            data = data.replace(p, MASK)
        return data.decode("utf-8", "backslashreplace")


def decoded(data: bytes | bytearray, secrets: Secrets | None) -> str:
    """Captured host output as text: UTF-8, bytes that are not shown as ``\\xNN``, every known secret
    masked."""
    text = bytes(data).decode("utf-8", "backslashreplace")
    return secrets.redact(text) if secrets else text


def probes(patterns: list[bytes]) -> list[bytes]:
    """Byte strings that every pattern starts with one of: a secret's raw and URL-encoded forms share their
    start (up to the first character that needs encoding), so one scan for that usually stands for all."""
    out: list[bytes] = []
    for p in patterns:
        for i, q in enumerate(out):
            n = len(os.path.commonprefix([p, q]))
            if n >= min(8, len(p), len(q)):
                out[i] = q[:n]
                break
        else:
            out.append(p)
    return out


class SecretFinder:
    """Tells whether any of some byte strings occurs in a buffer, faster than a substring search each.

    CPython finds a single byte with ``memchr``, ~10x faster than a longer string, so each string is
    looked for by one of its bytes (its anchor, the one found least often in the buffer where it was
    chosen) and checked in full where that byte is. When the anchor turns out to be common, the string
    is searched for plainly for the next ``RETRY`` buffers, then an anchor is chosen afresh. The answer
    is exact either way.
    """

    RETRY = 64

    def __init__(self, strings: Iterable[bytes]) -> None:
        self._strings = [s for s in dict.fromkeys(strings) if s]
        self._anchors: list[int | None] = [None] * len(self._strings)  # index of the anchor byte
        self._plain = [0] * len(self._strings)  # buffers left to search plainly

    def __bool__(self) -> bool:
        return bool(self._strings)

    def found_in(self, buf: bytes) -> bool:
        """Whether one of the strings occurs in ``buf``."""
        limit = 16 + (len(buf) >> 11)  # a check costs about as much as searching 2 KiB plainly
        for k, s in enumerate(self._strings):
            if self._plain[k]:
                self._plain[k] -= 1
                if s in buf:
                    return True
                continue
            j = self._anchors[k]
            if j is None:
                counts = {b: buf.count(b) for b in set(s)}
                j = self._anchors[k] = min(range(len(s)), key=lambda i: counts[s[i]])
            anchor, left = s[j : j + 1], limit
            i = buf.find(anchor, j)
            while i >= 0:
                if buf.startswith(s, i - j):
                    return True
                left -= 1
                if not left:  # a common byte after all
                    self._plain[k], self._anchors[k] = self.RETRY, None
                    if s in buf:
                        return True
                    break
                i = buf.find(anchor, i + 1)
        return False


class StreamRedactor:
    """Redacts known secrets in one byte stream that arrives in arbitrary chunks.

    Masking is what one pass over the whole stream would do (leftmost match, the longest secret first at
    a position). Only a chunk's tail that could still be the start of a secret is held back (never more
    than the longest secret's length - 1 bytes): a prompt or a progress line passes at once. ``finish``
    flushes the tail at the end of the stream.
    """

    def __init__(self, secrets: Secrets | None) -> None:
        self._patterns = secrets.patterns if secrets else []
        alternatives = b"|".join(re.escape(p) for p in self._patterns)
        self._regex = re.compile(alternatives) if self._patterns else None
        self._firsts = frozenset(p[0] for p in self._patterns)
        self._finder = SecretFinder(probes(self._patterns))
        self._keep = max((len(p) for p in self._patterns), default=1) - 1
        self._held = b""

    @property
    def held(self) -> int:
        """Bytes received but not handed out yet (a possible start of a secret)."""
        return len(self._held)

    def _hold_from(self, buf: bytes, start: int) -> int:
        """The first position (>= start) from which ``buf`` is a proper prefix of a secret, else its end."""
        end = len(buf)
        for i in range(max(start, end - self._keep), end):
            if buf[i] in self._firsts:
                tail = buf[i:]
                if any(len(p) > len(tail) and p.startswith(tail) for p in self._patterns):
                    return i
        return end

    def feed(self, data: bytes) -> bytes:
        """The redacted bytes that are final now (possibly ``b""``)."""
        if self._regex is None:
            return data
        buf = self._held + data if self._held else data
        cut = self._hold_from(buf, 0)
        if not self._finder.found_in(buf):  # the common case: no secret anywhere
            self._held = buf[cut:]
            return buf[:cut]
        out: list[bytes] = []
        pos = 0
        for m in self._regex.finditer(buf):  # leftmost matches, in order, as one pass would find them
            if m.start() >= cut:  # may still grow into a longer secret, or be one's middle: wait
                break
            out += (buf[pos : m.start()], MASK)
            pos = m.end()
            if pos > cut:  # a final match ran past the hold point: what follows it is judged afresh
                cut = self._hold_from(buf, pos)
        out.append(buf[pos:cut])
        self._held = buf[cut:]
        return b"".join(out)

    def finish(self) -> bytes:
        """The held tail, redacted: the stream has ended."""
        rest, self._held = self._held, b""
        return self._regex.sub(MASK, rest) if self._regex is not None and rest else rest


ByteSink = Callable[[Stream, bytes], None]
"""Receives raw chunks of a command's output, tagged with their stream."""


class RedactedBytes:
    """A ``ByteSink`` that redacts each stream on its own (``StreamRedactor``) and passes the bytes on."""

    def __init__(self, out: ByteSink, secrets: Secrets | None) -> None:
        self._out = out
        self._secrets = secrets if secrets else None
        self._redactors: dict[Stream, StreamRedactor] = {}

    def __call__(self, stream: Stream, data: bytes) -> None:
        if self._secrets is None:
            self._out(stream, data)
            return
        redactor = self._redactors.get(stream)
        if redactor is None:
            redactor = self._redactors[stream] = StreamRedactor(self._secrets)
        data = redactor.feed(data)
        if data:
            self._out(stream, data)

    def held(self, stream: Stream) -> int:
        """Bytes of ``stream`` not handed out yet."""
        redactor = self._redactors.get(stream)
        return redactor.held if redactor else 0

    def close(self) -> None:
        """Hand out every held tail (the streams have ended)."""
        for stream, redactor in self._redactors.items():
            rest = redactor.finish()
            if rest:
                self._out(stream, rest)
