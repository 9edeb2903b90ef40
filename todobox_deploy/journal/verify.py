"""Check a journal's hash chain.

Rule: lines are checked in order and the first problem is reported. Line 1's ``prev`` must be 64 zeros;
line k's ``prev`` must be the sha256 of line k-1's bytes, and its ``seq`` must be k. When a link breaks,
``bad_line`` is k (the first line whose ``prev`` does not match) and the reason says that line k-1 was
changed or that a line was removed or reordered before k. The last line has no successor to vouch for
it: a change to it is only caught if it breaks the line's own shape.

A journal whose last entry is not ``session_ended`` is still ``ok`` (the session may be open); the
reason says so.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from todobox_deploy.journal.journal import GENESIS, encode_entry, line_hash

_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class JournalCheck:
    ok: bool
    entries: int
    bad_line: int | None  # 1-based
    reason: str


def _check(lines: list[tuple[bytes, object]]) -> JournalCheck:
    """Check ``(exact bytes, parsed value)`` pairs; a parsed value of ``None`` means invalid JSON."""
    count = len(lines)

    def _bad(k: int, reason: str) -> JournalCheck:
        return JournalCheck(False, count, k, f"line {k}: {reason}")

    expected_prev = GENESIS
    last_event = None
    for k, (raw, entry) in enumerate(lines, start=1):
        if not isinstance(entry, dict):
            return _bad(k, "not a JSON object (invalid JSON or truncated)")
        prev, seq, last_event = entry.get("prev"), entry.get("seq"), entry.get("event")
        if not isinstance(prev, str) or not _HEX64.fullmatch(prev):
            return _bad(k, "no valid 'prev' hash")
        if not isinstance(seq, int) or isinstance(seq, bool):
            return _bad(k, "no valid 'seq'")
        if not isinstance(last_event, str):
            return _bad(k, "no 'event'")
        if prev != expected_prev:
            if k == 1:
                return _bad(k, "first line's prev is not 64 zeros: lines before it were removed")
            return _bad(
                k,
                f"prev does not match the hash of line {k - 1}: line {k - 1} was changed, "
                f"or a line was removed or reordered before line {k}",
            )
        if seq != k:
            return _bad(k, f"seq is {seq}, expected {k}: lines were removed or reordered")
        expected_prev = line_hash(raw)
    if count == 0:
        return JournalCheck(False, 0, None, "the journal is empty")
    reason = f"{count} entries, chain intact"
    if last_event != "session_ended":
        reason += f"; the session has not ended (last event: {last_event}), it may still be open"
    return JournalCheck(True, count, None, reason)


def _parse(raw: bytes) -> object:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def verify_journal(path: Path) -> JournalCheck:
    """Check the journal file at ``path`` byte for byte."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return JournalCheck(False, 0, None, f"no journal at {path}")
    lines = data.split(b"\n")
    tail = lines.pop()
    if tail:
        n = len(lines) + 1
        reason = f"line {n}: incomplete (no newline at the end), a write was cut off"
        return JournalCheck(False, len(lines), n, reason)
    return _check([(raw, _parse(raw)) for raw in lines])


def verify_entries(entries: Iterable[Mapping[str, Any]]) -> JournalCheck:
    """Check already-parsed entries, re-encoding each canonically (as :class:`Journal` writes them).

    This catches changed, removed and reordered entries but not edits to the file's formatting alone;
    use :func:`verify_journal` on the file for that.
    """
    return _check([(encode_entry(e), dict(e)) if isinstance(e, Mapping) else (b"", None) for e in entries])
