"""Known secrets that must never reach any output; ``lines.LineSplitter`` applies them to streams."""

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
        """Redact a complete string (e.g. an exception message)."""
        data = text.encode("utf-8", "surrogateescape")
        for p in self.patterns:
            data = data.replace(p, MASK)
        return data.decode("utf-8", "replace")
