"""Known secrets and a chunk-boundary-safe redactor for byte streams."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import quote, quote_plus

MASK = b"[REDACTED]"


class Secrets:
    """A set of secret strings (plus their URL-encoded forms) that must never reach any output."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._values: set[bytes] = set()
        for v in values:
            self.add(v)

    def add(self, value: str) -> None:
        """Register a secret and its URL-encoded variants (as found in DSNs)."""
        if not value:
            return
        for form in {value, quote(value, safe=""), quote_plus(value)}:
            self._values.add(form.encode("utf-8"))

    def __bool__(self) -> bool:
        return bool(self._values)

    def __repr__(self) -> str:  # never show the values
        return f"Secrets(<{len(self._values)} hidden>)"

    @property
    def patterns(self) -> list[bytes]:
        """The byte patterns, longest first (so a longer secret is masked before its substrings)."""
        return sorted(self._values, key=len, reverse=True)

    def redact(self, text: str) -> str:
        """Redact a complete string (e.g. an exception message)."""
        data = text.encode("utf-8", "surrogateescape")
        for p in self.patterns:
            data = data.replace(p, MASK)
        return data.decode("utf-8", "replace")

    def redactor(self) -> StreamRedactor:
        return StreamRedactor(self)


class StreamRedactor:
    """Feed raw bytes in any chunking; get bytes back with every secret masked.

    Holds back ``len(longest secret) - 1`` bytes so a secret split across chunks is still caught.
    """

    def __init__(self, secrets: Secrets | None) -> None:
        self._patterns = secrets.patterns if secrets else []
        self._keep = max((len(p) for p in self._patterns), default=1) - 1
        self._buf = b""

    def feed(self, data: bytes) -> bytes:
        if not self._patterns:
            return data
        buf = self._buf + data
        for p in self._patterns:
            buf = buf.replace(p, MASK)
        cut = len(buf) - self._keep
        if cut <= 0:
            self._buf = buf
            return b""
        self._buf = buf[cut:]
        return buf[:cut]

    def flush(self) -> bytes:
        buf, self._buf = self._buf, b""
        for p in self._patterns:
            buf = buf.replace(p, MASK)
        return buf
