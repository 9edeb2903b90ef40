"""An append-only, fsync'd, hash-chained JSON-lines record of the session: who confirmed what, when.

One file per deploy session, one JSON object per line. Every line carries ``seq`` (1-based), ``ts``,
``event``, ``operator``, ``host``, the caller's fields and ``prev``: the sha256 hex of the previous
line's bytes (without its newline); the first line's ``prev`` is :data:`GENESIS`. Changing, removing
or reordering a line therefore breaks the chain (see :mod:`todobox_deploy.journal.verify`).

Appends take an exclusive ``flock`` on the file, so several threads and processes (the wizard and
``todobox-deploy exec``) may append to the same journal. Only the standard library is used here.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

GENESIS = "0" * 64
"""``prev`` of the first line."""

RESERVED = ("seq", "ts", "prev")
"""Keys the journal sets itself; callers' values for them are dropped (as is ``at``)."""

_CHUNK = 8192


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def encode_entry(entry: Mapping[str, Any]) -> bytes:
    """The canonical bytes of one line (without its newline)."""
    return json.dumps(entry, sort_keys=True, default=str, ensure_ascii=True).encode("ascii")


def line_hash(line: bytes) -> str:
    """sha256 hex of a line's exact bytes, without its trailing newline."""
    return hashlib.sha256(line).hexdigest()


def _tail(fd: int) -> tuple[int, bytes | None]:
    """``(end, last_line)``: the offset just past the last newline and the last complete line.

    Bytes after the last newline (a write cut off by a crash) are not part of any line; ``end`` is where
    they start. Reads backwards in chunks, so a long journal is not re-read.
    """
    size = os.fstat(fd).st_size
    pos = size
    buf = b""
    end: int | None = None
    while pos > 0:
        step = min(_CHUNK, pos)
        pos -= step
        buf = os.pread(fd, step, pos) + buf
        if end is None:
            cut = buf.rfind(b"\n")
            if cut < 0:
                continue
            end = pos + cut + 1
            buf = buf[:cut]
        start = buf.rfind(b"\n")
        if start >= 0:
            return end, buf[start + 1 :]
    if end is None:
        return 0, None
    return end, buf


def _count_lines(fd: int, end: int) -> int:
    count, pos = 0, 0
    while pos < end:
        chunk = os.pread(fd, min(1 << 20, end - pos), pos)
        count += chunk.count(b"\n")
        pos += len(chunk)
    return count


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def last_entry(path: Path) -> dict[str, Any] | None:
    """The last complete entry of the journal at ``path``; ``None`` if it is missing or empty.

    Raises ``ValueError`` if that line is not a JSON object.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        _, line = _tail(fd)
    finally:
        os.close(fd)  # closing releases the lock
    if line is None:
        return None
    entry = json.loads(line)
    if not isinstance(entry, dict):
        raise ValueError(f"{path}: last line is not a JSON object")
    return entry


def first_entry(path: Path) -> dict[str, Any] | None:
    """The first entry (the session header) of the journal at ``path``; ``None`` if missing or empty."""
    try:
        with path.open("rb") as fh:
            line = fh.readline()
    except FileNotFoundError:
        return None
    if not line.endswith(b"\n"):
        return None
    entry = json.loads(line)
    if not isinstance(entry, dict):
        raise ValueError(f"{path}: first line is not a JSON object")
    return entry


class Journal:
    """Append events to ``path``; safe across threads and processes."""

    def __init__(self, path: Path, *, operator: str, host: str) -> None:
        self.path = path
        self.operator = operator
        self.host = host
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)

    @classmethod
    def open_existing(cls, path: Path, *, operator: str | None = None) -> Journal:
        """A journal appending to an existing session journal (host and default operator from its header)."""
        header = first_entry(path)
        if header is None:
            raise FileNotFoundError(f"no session journal at {path}")
        return cls(
            path, operator=operator or str(header.get("operator", "")), host=str(header.get("host", ""))
        )

    def record(self, event: str, **fields: Any) -> dict[str, Any]:
        """Append one event and return it as written.

        A field ``operator`` (or ``host``) replaces the default; ``at``, ``seq``, ``ts`` and ``prev`` given
        by the caller are dropped, so each entry has exactly one of each.
        """
        fields.pop("at", None)
        for key in RESERVED:
            fields.pop(key, None)
        operator = fields.pop("operator", None)
        host = fields.pop("host", None)
        with self._lock:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                end, last = _tail(fd)
                if end < os.fstat(fd).st_size:  # a torn write from a crash: never a complete entry
                    os.ftruncate(fd, end)
                seq, prev = self._next(fd, end, last)
                entry: dict[str, Any] = {
                    "seq": seq,
                    "ts": utc_now(),
                    "event": event,
                    "operator": self.operator if operator is None else operator,
                    "host": self.host if host is None else host,
                    **fields,
                    "prev": prev,
                }
                line = encode_entry(entry)
                _write_all(fd, line + b"\n")
                os.fsync(fd)
            finally:
                os.close(fd)  # closing releases the lock
        written: dict[str, Any] = json.loads(line)  # as a reader will see it
        return written

    @staticmethod
    def _next(fd: int, end: int, last: bytes | None) -> tuple[int, str]:
        """``(seq, prev)`` for the line after ``last``."""
        if last is None:
            return 1, GENESIS
        try:
            seq = json.loads(last).get("seq")
        except (ValueError, AttributeError):
            seq = None
        if not isinstance(seq, int) or isinstance(seq, bool):  # damaged or pre-chain line: count
            seq = _count_lines(fd, end)
        return seq + 1, line_hash(last)

    def __call__(self, event: Mapping[str, Any]) -> None:
        """Record an event given as a mapping with an ``event`` key (the shape the TUI hands over)."""
        fields = dict(event)
        name = str(fields.pop("event", "note"))
        self.record(name, **fields)

    def read(self) -> list[dict[str, Any]]:
        """All complete entries, in order."""
        if not self.path.exists():
            return []
        lines = self.path.read_bytes().split(b"\n")[:-1]  # a torn last line is not an entry
        return [json.loads(line) for line in lines if line.strip()]
