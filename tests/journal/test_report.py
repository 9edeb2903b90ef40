"""The Markdown report: sections, flags, and escaping of hostile journal values."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from todobox_deploy.journal.journal import Journal
from todobox_deploy.journal.report import code, journal_report, report_file

HOSTILE = "dump \x1b[2J [bold]red[/bold] a|b\nnext \x7f\x85\x9b <script>"


def _session(path: Path) -> Journal:
    j = Journal(path, operator="alice", host="prod.example")
    j.record(
        "session_started",
        config="deploy.toml",
        version="0.1.0",
        machine="laptop",
        pid=42,
        session_dir="/state/s1",
        unfinished_session="s0",
    )
    j.record("lock_taken", path="/var/lock/deploy", take_over=True, previous="bob@old")
    j.record(
        "resume_offered",
        from_session="s0",
        accepted=True,
        rows=[["commit", "aaa", "bbb"]],
        carried=["backup"],
        warnings=["the app is DOWN on the host"],
        resume_at="migrate",
    )
    j.record("context_updated", changes={"commit_before": "aaa", "app_down_at": "10:00"})
    j.record("phase_started", phase="backup", open_items=["backup.check_space"])
    j.record(
        "phase_finished",
        phase="backup",
        status="ok",
        summary=HOSTILE,
        facts={"dump|size": "12 MB", "path": "/srv/backup.sql.gz"},
        commands=[{"command": "mysqldump db | gzip > `x`", "exit_code": 0, "seconds": 3.25}],
        seconds=4.5,
    )
    j.record(
        "phase_confirmed", phase="backup", node="backup", status="ok", summary="looks fine", unattended=True
    )
    j.record("phase_by_hand", phase="migrate")
    j.record("phase_confirmed", phase="migrate", node="migrate", status="ok", summary="ok", unattended=False)
    j.record("phase_refused", phase="restart", reason="no backup yet")
    j.record("phase_abandoned", phase="restart", reason="gave up")
    j.record("phase_started", phase="verify", open_items=[])
    j.record("cancel_requested", phase="verify")
    j.record("context_updated", changes={"commit_before": "ccc"})
    j.record("item_confirmed", item="predeploy.notify_team", title="Tell the team", unattended=True)
    j.record("item_unconfirmed", item="predeploy.notify_team", title="Tell the team", unattended=False)
    j.record("exec_command", command="tail -n 5 log", exit_code=1, seconds=0.2, app=True, detached=False)
    j.record("connection_reestablished", reason="keepalive timeout")
    j.record("mystery_event", detail="[bold]x[/bold]")
    j.record("session_ended", exit_code=3, reason="operator quit")
    return j


def _section(report: str, title: str) -> str:
    return report.split(f"\n{title}\n", 1)[1].split("\n## ", 1)[0]


def _unescaped_pipes(line: str) -> int:
    return len(re.findall(r"(?<!\\)\|", line))


@pytest.fixture
def report(tmp_path: Path) -> str:
    return report_file(_session(tmp_path / "journal.jsonl").path)


def test_header_starts_with_the_verification(report: str) -> None:
    assert report.splitlines()[2].startswith("**✅ Journal chain verifies**")
    session = _section(report, "## Session")
    for expected in ("alice", "prod.example", "`deploy.toml`", "0.1.0", "`s0`", "| Exit code | 3 |"):
        assert expected in session
    assert "**⚠ not ended**" not in report
    assert "**⚠ lock taken over** from bob@old" in session


def test_context_keeps_the_last_value(report: str) -> None:
    context = _section(report, "## Deploy context")
    assert "| `commit_before` | ccc |" in context and "aaa" not in context
    assert "`app_down_at`" in context


def test_resume_shows_what_the_journal_said_beside_the_host(report: str) -> None:
    resumed = _section(report, "## Resume of an unfinished session")
    assert "| commit | aaa | bbb |" in resumed
    assert "accepted" in resumed and "the app is DOWN" in resumed and "`migrate`" in resumed


def test_phases_in_order_with_flags(report: str) -> None:
    titles = re.findall(r"^### Phase `(\w+)`", report, flags=re.M)
    assert titles == ["backup", "migrate", "restart", "verify"]
    backup = report.split("### Phase `backup`")[1].split("### Phase")[0]
    assert re.search(r"^\*\*⚠ unattended\*\*: confirmed unattended by alice", backup, flags=re.M)
    assert "- Status: **ok**" in backup and "4.5 s" in backup
    assert "| `path` | /srv/backup.sql.gz |" in backup
    assert "| `` mysqldump db \\| gzip > `x` `` | 0 | 3.2 s |" in backup
    migrate = report.split("### Phase `migrate`")[1].split("### Phase")[0]
    assert re.search(r"^\*\*⚠ by hand\*\*", migrate, flags=re.M) and "not confirmed" not in migrate
    restart = report.split("### Phase `restart`")[1].split("### Phase")[0]
    assert re.search(r"^\*\*⚠ abandoned\*\*: gave up", restart, flags=re.M)
    assert re.search(r"^\*\*⚠ not confirmed\*\*", restart, flags=re.M)
    assert "Refused at" in restart and "no backup yet" in restart
    verify = report.split("### Phase `verify`")[1]
    assert "**⚠ unfinished**" in verify and "Cancel requested by alice" in verify


def test_items_exec_reconnects_and_unknown_events(report: str) -> None:
    items = _section(report, "## Manual items")
    assert "confirmed | alice" in items and "**⚠ unattended**" in items and "unconfirmed" in items
    execs = _section(report, "## Commands run by hand (`exec`)")
    assert "`tail -n 5 log` | 1 | 0.2 s | yes | no |" in execs
    assert "keepalive timeout" in _section(report, "## Reconnects")
    others = _section(report, "## Other events")
    assert "`mystery_event`" in others and "`detail`: \\[bold\\]x\\[/bold\\]" in others


def test_hostile_text_is_escaped(report: str) -> None:
    for raw in ("\x1b", "\x7f", "\x85", "\x9b", "[bold]", "<script>", "a|b"):
        assert raw not in report
    assert "dump \\x1b\\[2J \\[bold\\]red\\[/bold\\] a\\|b\\x0anext \\x7f\\x85\\x9b \\<script\\>" in report
    rows = [line for line in report.splitlines() if line.startswith(("| `dump", "| `` mysqldump"))]
    assert [_unescaped_pipes(line) for line in rows] == [3, 4]


def test_table_cells_never_split(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.jsonl", operator="a|b", host="h\n| x |")
    j.record("session_started")
    j.record("exec_command", command="a | b ` c", exit_code="0|1", seconds="x|y", app=False, detached=False)
    for line in report_file(j.path).splitlines():
        if line.startswith("|") and not line.startswith("|---"):
            assert _unescaped_pipes(line) in (3, 7), line


@pytest.mark.parametrize("command", ["`", "a ``b`` c", "``", " x ", "`start", "end`"])
def test_backticks_cannot_break_out_of_inline_code(command: str) -> None:
    rendered = code(command)
    fence = re.match(r"`+", rendered)
    assert fence is not None
    inner = rendered[len(fence.group()) : -len(fence.group())]
    assert rendered.endswith(fence.group()) and fence.group() not in inner
    assert inner.strip(" ") == command.strip(" ") or inner[1:-1] == command


def test_report_file_flags_a_tampered_journal_and_keeps_garbage(tmp_path: Path) -> None:
    path = _session(tmp_path / "journal.jsonl").path
    lines = path.read_bytes().split(b"\n")
    lines[3] = lines[3].replace(b"alice", b"mallory")
    lines.insert(6, b"\x1b[2J not json |")
    path.write_bytes(b"\n".join(lines))
    report = report_file(path)
    assert report.splitlines()[2].startswith("**⚠ Journal chain does NOT verify**: line 5:")
    others = _section(report, "## Other events")
    assert "(unreadable line)" in others and "\\x1b\\[2J not json \\|" in others


def test_journal_report_recomputes_the_chain_from_entries(tmp_path: Path) -> None:
    entries: list[dict[str, Any]] = _session(tmp_path / "journal.jsonl").read()
    assert "**✅ Journal chain verifies** (recomputed" in journal_report(entries)
    entries[4]["summary"] = "edited"
    assert "**⚠ Journal chain does NOT verify** (recomputed" in journal_report(entries)


def test_unended_session_and_never_confirmed_phase(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.jsonl", operator="alice", host="h")
    j.record("session_started")
    j.record("phase_started", phase="deploy_code", open_items=[])
    j.record(
        "phase_finished", phase="deploy_code", status="failed", summary="diverged", facts={}, commands=[]
    )
    j.record(
        "phase_not_confirmed", phase="deploy_code", node="n", status="failed", summary="no", unattended=False
    )
    report = report_file(j.path)
    assert "may still be open" in report.splitlines()[2]
    assert "**⚠ not ended**" in report
    assert "**⚠ not confirmed**: last decision was 'not confirmed' by alice" in report
    assert "**⚠ failed**" in report


def test_odd_shapes_do_not_crash(tmp_path: Path) -> None:
    entries: list[Any] = [
        {"event": "phase_finished", "phase": None, "facts": [1], "commands": "x", "seconds": "soon"},
        {"event": 5},
        ["not", "a", "dict"],
        {"event": "context_updated", "changes": "nope"},
    ]
    report = journal_report(entries)
    assert "Journal chain does NOT verify" in report and "(not an object)" in report
