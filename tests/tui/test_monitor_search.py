"""Session search without the UI: transcripts by grep or in Python give the same hits, in source order,
with line numbers and byte offsets that place each hit back in the log pane or a transcript excerpt."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from todobox_deploy.core.streams import Unterminated
from todobox_deploy.engine.transcript import Transcript
from todobox_deploy.tui.session_search import (
    BLOCK,
    GREP,
    Hit,
    SearchSource,
    excerpt,
    lines_after,
    scan_file,
    search_sources,
    transcript_content,
)

SCANNERS = [
    pytest.param(None, id="python"),
    pytest.param(GREP, id="grep", marks=pytest.mark.skipif(not GREP, reason="no grep")),
]


def _transcript(directory: Path, phase: str, lines: list[str]) -> Path:
    t = Transcript(directory, phase)
    t.write_lines("stdout", lines[:-2])
    t.write_lines("stderr", [Unterminated(lines[-2])])  # a no-newline note follows it
    t.write_lines("error", [lines[-1]])
    t.close()
    return t.path


def _search(
    sources: list[SearchSource], needle: str, grep: str | None, limit: int = 500
) -> list[tuple[str, list[Hit]]]:
    batches: list[tuple[str, list[Hit]]] = []
    search_sources(
        sources, needle, lambda s, hits: batches.append((s, hits)), limit_per_source=limit, grep=grep
    )
    return batches


@pytest.mark.parametrize("grep", SCANNERS)
def test_hits_come_in_source_order_with_positions(tmp_path: Path, grep: str | None) -> None:
    a = _transcript(
        tmp_path, "backup", [f"backup line {i}" for i in range(30)] + ["Needle on stderr", "needle error"]
    )
    b = _transcript(tmp_path, "migrate", [f"migrate line {i}" for i in range(5)] + ["x", "NEEDLE"])
    sources = [
        SearchSource("backup", "Backup", "phase", path=a),
        SearchSource("preflight", "Pre-flight", "phase", lines=("  one", "! a needle in memory")),
        SearchSource("migrate", "Migrate", "phase", path=b),
        SearchSource("nowhere", "Missing", "phase", path=tmp_path / "missing.log"),
    ]
    batches = _search(sources, "needle", grep)
    hits = [h for _, batch in batches for h in batch]
    assert [(h.source, h.line_no, h.content) for h in hits] == [
        ("backup", 31, "Needle on stderr"),
        ("backup", 33, "needle error"),  # line 32 is the no-newline note
        ("preflight", 2, "a needle in memory"),
        ("migrate", 8, "NEEDLE"),
    ]
    assert all(s == batch[0].source for s, batch in batches)
    raw = a.read_bytes()
    for hit in (hits[0], hits[1], hits[3]):
        path = a if hit.source == "backup" else b
        data = path.read_bytes()
        assert hit.offset is not None and data[hit.offset :].split(b"\n", 1)[0].decode() == hit.text
    assert hits[0].text.endswith("! Needle on stderr") and hits[2].offset is None
    assert lines_after(a, hits[0].offset or 0) == 1  # the error line; the note is not a pane line
    assert lines_after(a, hits[1].offset or 0) == 0
    lines, index = excerpt(a, hits[0].offset or 0, before=3, after=1)
    assert lines[index] == hits[0].text and len(lines) == 5 and raw


@pytest.mark.parametrize("grep", SCANNERS)
def test_limit_and_case_folding(tmp_path: Path, grep: str | None) -> None:
    a = _transcript(tmp_path, "backup", [f"Row {i} MATCH" for i in range(50)] + ["match", "MaTcH"])
    hits = [
        h
        for _, batch in _search([SearchSource("backup", "B", "phase", path=a)], "match", grep, limit=7)
        for h in batch
    ]
    assert [h.line_no for h in hits] == [1, 2, 3, 4, 5, 6, 7]
    assert _search([SearchSource("backup", "B", "phase", path=a)], "", grep) == []


def test_the_python_scan_crosses_block_boundaries(tmp_path: Path) -> None:
    path = tmp_path / "big.log"
    line = "10:00:00   " + "x" * 90
    count = (BLOCK // len(line)) * 3
    with path.open("w") as fh:
        for i in range(count):
            fh.write(f"{line} {'hit' if i % 7919 == 0 else ''}\n")
    cancel = threading.Event()
    hits = [h for batch in scan_file("p", path, "HIT", 10_000, cancel) for h in batch]
    assert [h.line_no for h in hits] == [i + 1 for i in range(0, count, 7919)]
    data = path.read_bytes()
    assert all(data[h.offset or 0 :].startswith(h.text.encode()) for h in hits)
    cancel.set()
    assert list(scan_file("p", path, "hit", 10, cancel)) == []


def test_transcript_content_strips_stamp_and_mark() -> None:
    assert transcript_content("10:00:00   plain") == "plain"
    assert transcript_content("10:00:00 ! err") == "err"
    assert transcript_content("10:00:00 !! bad") == "bad"
    assert transcript_content("10:00:00 # info") == "info"
    assert transcript_content("Traceback (most recent call last):") == "Traceback (most recent call last):"
