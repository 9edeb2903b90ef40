"""Search a whole session: every phase's full transcript on disk, and the in-memory windows of what has
no transcript (the quick-reference log, the monitoring tails). No Textual: the search screen runs
:func:`search_sources` in a worker thread and shows each batch as it comes.

Matching is a case-insensitive substring (ASCII letters fold; like the log pane's own search). Files are
scanned by the local ``grep -F -i`` (another process: the UI thread never waits on a scan for the GIL;
its hits stream back line by line, so a hit early in a big transcript is shown long before the scan
ends); without a ``grep``, in Python, in 1 MiB blocks (``bytes.lower`` + ``find``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from todobox_deploy.engine.transcript import NO_NEWLINE
from todobox_deploy.engine.transcript import PREFIX as TRANSCRIPT_PREFIX

BLOCK = 1 << 20
GREP = shutil.which("grep")
BATCH_SECONDS = 0.05
SourceKind = Literal["phase", "quickref", "tail"]
_STAMP = 9  # "HH:MM:SS " before every transcript line
_PREFIXES = sorted(TRANSCRIPT_PREFIX.values(), key=len, reverse=True)
_NOTE = NO_NEWLINE.encode("utf-8")


@dataclass(frozen=True)
class SearchSource:
    """One place to search: a transcript file, or lines held in memory (a pane's window)."""

    id: str
    title: str
    kind: SourceKind
    path: Path | None = None
    lines: tuple[str, ...] = ()


@dataclass(frozen=True)
class Hit:
    """A matching line: ``line_no`` is 1-based in its source; ``offset`` is the line's byte offset in the
    transcript (None for a line in memory); ``content`` is the line without timestamp and stream mark."""

    source: str
    line_no: int
    text: str
    content: str
    offset: int | None = None


def transcript_content(line: str) -> str:
    """A transcript line's text as the log pane shows it after its gutter (timestamp and mark removed)."""
    rest = line[_STAMP:] if len(line) > _STAMP and line[2:3] == ":" and line[5:6] == ":" else line
    for prefix in _PREFIXES:
        if rest.startswith(prefix):
            return rest[len(prefix) :]
    return rest


def pane_content(line: str) -> str:
    """A log pane line's text after its two-cell gutter."""
    return line[2:]


def search_lines(source: str, lines: Sequence[str], needle: str, limit: int) -> list[Hit]:
    """Hits among in-memory pane lines (at most ``limit``)."""
    low = needle.lower()
    hits: list[Hit] = []
    if not low:
        return hits
    for i, line in enumerate(lines):
        if low in line.lower():
            hits.append(Hit(source, i + 1, line, pane_content(line)))
            if len(hits) >= limit:
                break
    return hits


def grep_hits(
    grep: str,
    files: Sequence[tuple[str, Path]],
    needle: str,
    limit: int,
    cancel: threading.Event | None = None,
) -> Generator[tuple[str, Hit], None, None]:
    """``(source, hit)`` from one ``grep`` over every file, in file order (at most ``limit`` per file),
    each as soon as grep prints it."""
    by_path = {os.fsencode(str(path)): source for source, path in files}
    argv = [grep, "-a", "-i", "-F", "-H", "-Z", "-n", "-b", "--line-buffered", "-m", str(limit), "-e", needle]
    argv += ["--", *(str(path) for _, path in files)]
    env = {**os.environ, "LC_ALL": "C"}  # ASCII case folding, as the Python scan; and grep's fastest path
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env) as proc:
        assert proc.stdout is not None
        try:
            for raw in proc.stdout:  # b"PATH\0LINE:OFFSET:text\n"
                if cancel is not None and cancel.is_set():
                    return
                name, _, rest = raw.rstrip(b"\n").partition(b"\0")
                number, offset, data = rest.split(b":", 2)
                source = by_path.get(name)
                if source is not None:
                    text = data.decode("utf-8", "backslashreplace")
                    yield source, Hit(source, int(number), text, transcript_content(text), int(offset))
        finally:
            if proc.poll() is None:
                proc.kill()


def scan_file(
    source: str, path: Path, needle: str, limit: int, cancel: threading.Event | None = None
) -> Iterator[list[Hit]]:
    """Hits in a transcript, scanned in Python, one batch per block that has any (at most ``limit``)."""
    low = needle.lower().encode("utf-8")
    if not low:
        return
    found = 0
    line_no = 0  # lines before the block
    base = 0  # byte offset of the block
    carry = b""
    try:
        fh = path.open("rb")
    except OSError:
        return
    with fh:
        while found < limit:
            if cancel is not None and cancel.is_set():
                return
            chunk = fh.read(BLOCK)
            data = carry + chunk
            if not data:
                return
            end = data.rfind(b"\n") + 1 if chunk else len(data)
            if end == 0:  # one line longer than a block: read on
                carry = data
                continue
            block, carry = data[:end], data[end:]
            batch = _scan_block(source, block, low, base, line_no, limit - found)
            if batch:
                found += len(batch)
                yield batch
            line_no += block.count(b"\n") + (0 if block.endswith(b"\n") else 1)
            base += len(block)
            if not chunk:
                return


def _scan_block(source: str, block: bytes, low: bytes, base: int, line_no: int, room: int) -> list[Hit]:
    lowered = block.lower()
    hits: list[Hit] = []
    pos = lowered.find(low)
    counted_to, lines_before = 0, line_no
    while pos != -1 and len(hits) < room:
        start = block.rfind(b"\n", 0, pos) + 1
        stop = block.find(b"\n", pos)
        stop = len(block) if stop == -1 else stop
        lines_before += block.count(b"\n", counted_to, start)
        counted_to = start
        text = block[start:stop].decode("utf-8", "backslashreplace")
        hits.append(Hit(source, lines_before + 1, text, transcript_content(text), base + start))
        pos = lowered.find(low, stop + 1)
    return hits


def search_sources(
    sources: Sequence[SearchSource],
    needle: str,
    emit: Callable[[str, list[Hit]], object],
    *,
    limit_per_source: int = 500,
    cancel: threading.Event | None = None,
    grep: str | None = GREP,
) -> int:
    """Search every source in order, calling ``emit(source id, hits)`` per batch (the first hit at once,
    then at most every BATCH_SECONDS); returns the hit count. Transcripts go to one ``grep`` when there
    is one (else they are scanned in Python), in-memory lines are searched here."""
    files = [(src.id, src.path) for src in sources if src.path is not None]
    stream = grep_hits(grep, files, needle, limit_per_source, cancel) if grep and files and needle else None
    pending: tuple[str, Hit] | None = None
    total = 0
    for src in sources:
        if cancel is not None and cancel.is_set():
            break
        if src.path is None:
            batch = search_lines(src.id, src.lines, needle, limit_per_source)
        elif stream is None:
            for batch in scan_file(src.id, src.path, needle, limit_per_source, cancel):
                total += len(batch)
                emit(src.id, batch)
            continue
        else:  # this file's hits: grep prints them before any later file's
            batch, flushed = [], time.monotonic()
            while True:
                if pending is None:
                    pending = next(stream, None)
                if pending is None or pending[0] != src.id:
                    break
                batch.append(pending[1])
                pending = None
                now = time.monotonic()
                if total == 0 or now - flushed >= BATCH_SECONDS:
                    total += len(batch)
                    emit(src.id, batch)
                    batch, flushed = [], now
        if batch:
            total += len(batch)
            emit(src.id, batch)
    if stream is not None:
        stream.close()
    return total


def lines_after(path: Path, offset: int) -> int:
    """How many transcript lines follow the line at ``offset`` (its no-newline notes not counted)."""
    count = notes = 0
    keep = len(_NOTE) - 1
    tail = b""
    with path.open("rb") as fh:
        fh.seek(offset)
        while chunk := fh.read(BLOCK):
            count += chunk.count(b"\n")
            data = tail + chunk
            notes += data.count(_NOTE)  # the tail is shorter than a note: nothing is counted twice
            tail = data[-keep:]
    return max(0, count - 1 - notes)


def excerpt(path: Path, offset: int, before: int = 300, after: int = 300) -> tuple[list[str], int]:
    """Lines around the line at ``offset`` and that line's index among them."""
    size = os.path.getsize(path)
    start = max(0, offset - 256 * before)
    with path.open("rb") as fh:
        fh.seek(start)
        data = fh.read(min(size - start, 256 * (before + after) + (offset - start) + 4096))
    head, tail = data[: offset - start], data[offset - start :]
    head_lines = head.split(b"\n")[:-1]
    if start > 0 and head_lines:
        head_lines = head_lines[1:]  # the first one is cut
    head_lines = head_lines[-before:]
    tail_lines = tail.split(b"\n")[: after + 1]
    lines = [b.decode("utf-8", "backslashreplace") for b in (*head_lines, *tail_lines)]
    return lines, len(head_lines)
