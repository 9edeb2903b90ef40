"""The journal's hash chain, its verification and concurrent appends (pure: files in tmp_path only)."""

from __future__ import annotations

import hashlib
import json
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from todobox_deploy.journal.journal import GENESIS, Journal, encode_entry, last_entry
from todobox_deploy.journal.verify import JournalCheck, verify_journal


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().split(b"\n")[:-1]


def _write_lines(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(line + b"\n" for line in lines))


def _journal(tmp_path: Path, n: int) -> Path:
    """A journal with a session header and ``n - 1`` further events."""
    journal = Journal(tmp_path / "s" / "journal.jsonl", operator="alice", host="prod.example")
    journal.record("session_started", config="deploy.toml", version="0.1.0")
    for k in range(2, n + 1):
        journal.record("phase_started", phase=f"p{k}", open_items=[])
    return journal.path


def test_chain_is_written(tmp_path: Path) -> None:
    path = _journal(tmp_path, 5)
    lines = _lines(path)
    entries = [json.loads(line) for line in lines]
    assert [e["seq"] for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0]["prev"] == GENESIS
    for k in range(1, 5):
        assert entries[k]["prev"] == hashlib.sha256(lines[k - 1]).hexdigest()
    assert all(e["operator"] == "alice" and e["host"] == "prod.example" and e["ts"] for e in entries)
    assert all(line == encode_entry(json.loads(line)) for line in lines)  # canonical, sorted keys
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_record_returns_the_entry_as_written(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.jsonl", operator="alice", host="h")
    entry = journal.record("note", where=tmp_path)
    assert entry == journal.read()[0]
    assert entry["where"] == str(tmp_path)


def test_verify_passes_on_an_intact_journal(tmp_path: Path) -> None:
    path = _journal(tmp_path, 30)
    check = verify_journal(path)
    assert check == JournalCheck(True, 30, None, check.reason)
    assert "may still be open" in check.reason  # not an error
    Journal(path, operator="alice", host="h").record("session_ended", exit_code=0, reason="done")
    check = verify_journal(path)
    assert check.ok and check.entries == 31 and "still open" not in check.reason


@pytest.mark.parametrize("changed", [2, 5, 9])
def test_one_changed_byte_in_a_line_names_it(tmp_path: Path, changed: int) -> None:
    path = _journal(tmp_path, 10)
    lines = _lines(path)
    lines[changed - 1] = lines[changed - 1].replace(b"alice", b"alicf")
    _write_lines(path, lines)
    check = verify_journal(path)
    assert not check.ok
    assert check.bad_line == changed + 1
    assert f"line {changed} was changed" in check.reason


def test_any_single_byte_change_of_a_middle_line_fails(tmp_path: Path) -> None:
    path = _journal(tmp_path, 9)
    original = _lines(path)
    for i in range(len(original[4])):
        lines = list(original)
        line = bytearray(lines[4])
        line[i] ^= 0x01
        lines[4] = bytes(line)
        _write_lines(path, lines)
        check = verify_journal(path)
        assert not check.ok and check.bad_line in (5, 6), (i, check)


def test_removed_line_fails(tmp_path: Path) -> None:
    path = _journal(tmp_path, 8)
    lines = _lines(path)
    del lines[3]  # line 4
    _write_lines(path, lines)
    check = verify_journal(path)
    assert not check.ok and check.bad_line == 4 and check.entries == 7
    assert "removed or reordered" in check.reason


def test_swapped_lines_fail(tmp_path: Path) -> None:
    path = _journal(tmp_path, 8)
    lines = _lines(path)
    lines[2], lines[3] = lines[3], lines[2]
    _write_lines(path, lines)
    check = verify_journal(path)
    assert not check.ok and check.bad_line == 3


@pytest.mark.parametrize("how", ["changed prev", "first removed"])
def test_bad_first_line_fails(tmp_path: Path, how: str) -> None:
    path = _journal(tmp_path, 4)
    lines = _lines(path)
    if how == "changed prev":
        lines[0] = lines[0].replace(GENESIS.encode(), b"1" * 64)
    else:
        del lines[0]
    _write_lines(path, lines)
    check = verify_journal(path)
    assert not check.ok and check.bad_line == 1 and "64 zeros" in check.reason


@pytest.mark.parametrize("garbage", [b"not json", b"[1, 2]", b"", b'{"seq": 3'])
def test_garbage_line_fails(tmp_path: Path, garbage: bytes) -> None:
    path = _journal(tmp_path, 5)
    lines = _lines(path)
    lines.insert(2, garbage)
    _write_lines(path, lines)
    check = verify_journal(path)
    assert not check.ok and check.bad_line == 3 and "JSON" in check.reason


def test_seq_gap_fails_even_with_a_consistent_chain(tmp_path: Path) -> None:
    lines: list[bytes] = []
    prev = GENESIS
    for seq in (1, 2, 4):
        line = encode_entry({"seq": seq, "ts": "t", "event": "e", "operator": "o", "host": "h", "prev": prev})
        lines.append(line)
        prev = hashlib.sha256(line).hexdigest()
    path = tmp_path / "j.jsonl"
    _write_lines(path, lines)
    check = verify_journal(path)
    assert not check.ok and check.bad_line == 3 and "seq is 4, expected 3" in check.reason


def test_empty_and_missing_journals_fail(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    assert not verify_journal(path).ok
    path.write_bytes(b"")
    check = verify_journal(path)
    assert not check.ok and check.entries == 0 and "empty" in check.reason


def test_torn_tail_is_reported_then_dropped_by_the_next_append(tmp_path: Path) -> None:
    path = _journal(tmp_path, 3)
    with path.open("ab") as fh:
        fh.write(b'{"event": "phase_fin')  # a crash mid-write
    check = verify_journal(path)
    assert not check.ok and check.bad_line == 4 and "cut off" in check.reason
    assert last_entry(path) is not None and last_entry(path)["seq"] == 3  # type: ignore[index]
    entry = Journal(path, operator="alice", host="h").record("session_ended", exit_code=1)
    assert entry["seq"] == 4
    assert verify_journal(path).ok


def test_operator_and_at_fields_are_not_duplicated(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.jsonl", operator="alice", host="h")
    journal({"event": "item_confirmed", "operator": "erin", "at": "2020-01-01T00:00:00", "item": "x"})
    journal.record("item_unconfirmed", item="x", seq=99, ts="forged", prev="f" * 64)
    journal.record("note")
    lines = _lines(journal.path)
    for line in lines:
        assert line.count(b'"operator"') == 1 and line.count(b'"ts"') == 1 and line.count(b'"seq"') == 1
        assert b'"at"' not in line
    entries = journal.read()
    assert [e["operator"] for e in entries] == ["erin", "alice", "alice"]
    assert [e["seq"] for e in entries] == [1, 2, 3] and entries[1]["ts"] != "forged"
    assert verify_journal(journal.path).ok


def test_last_entry_and_open_existing(tmp_path: Path) -> None:
    assert last_entry(tmp_path / "missing.jsonl") is None
    path = _journal(tmp_path, 3)
    last = last_entry(path)
    assert last is not None and last["seq"] == 3
    journal = Journal.open_existing(path, operator="bob")
    assert (journal.operator, journal.host) == ("bob", "prod.example")
    assert Journal.open_existing(path).operator == "alice"
    journal.record("exec_command", command="uptime", exit_code=0, seconds=0.1, app=False, detached=False)
    last = last_entry(path)
    assert last is not None and last["seq"] == 4 and last["operator"] == "bob"
    assert verify_journal(path).ok
    with pytest.raises(FileNotFoundError):
        Journal.open_existing(tmp_path / "missing.jsonl")


def test_long_lines_cross_the_tail_reader_chunks(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.jsonl", operator="alice", host="h")
    journal.record("session_started")
    for size in (8191, 8192, 20000, 1, 50000):
        journal.record("note", text="x" * size)
    assert [e["seq"] for e in journal.read()] == [1, 2, 3, 4, 5, 6]
    assert verify_journal(journal.path).ok


def test_threads_append_safely(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.jsonl", operator="alice", host="h")
    journal.record("session_started")

    def work(n: int) -> None:
        for k in range(50):
            journal.record("note", thread=n, k=k)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check = verify_journal(journal.path)
    assert check.ok and check.entries == 201


APPENDER = """
import sys
from pathlib import Path
from todobox_deploy.journal.journal import Journal
journal = Journal(Path(sys.argv[1]), operator=sys.argv[2], host="h")
sys.stdin.readline()  # start together
for k in range(int(sys.argv[3])):
    journal.record("exec_command", command=f"step {k}", exit_code=0, seconds=0.0, app=False, detached=False)
"""


def test_two_processes_append_to_the_same_journal(tmp_path: Path) -> None:
    path = _journal(tmp_path, 1)
    procs = [
        subprocess.Popen([sys.executable, "-c", APPENDER, str(path), who, "200"], stdin=subprocess.PIPE)
        for who in ("p1", "p2")
    ]
    for p in procs:
        assert p.stdin is not None
        p.stdin.write(b"go\n")
        p.stdin.close()
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    check = verify_journal(path)
    assert check.ok, check
    assert check.entries == 401
    entries = [json.loads(line) for line in _lines(path)]
    assert [e["seq"] for e in entries] == list(range(1, 402))
    assert sum(e["operator"] == "p1" for e in entries) == sum(e["operator"] == "p2" for e in entries) == 200


def test_journal_package_imports_only_the_standard_library() -> None:
    code = (
        "import sys; before = set(sys.modules); import todobox_deploy.journal\n"
        "new = {m.split('.')[0] for m in set(sys.modules) - before} - set(sys.stdlib_module_names)\n"
        "print(sorted(m for m in set(sys.modules) - before if m.startswith('todobox_deploy.')"
        " and not m.startswith('todobox_deploy.journal')), sorted(new - {'todobox_deploy'}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[] []"
