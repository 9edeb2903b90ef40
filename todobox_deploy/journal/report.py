"""A Markdown report of a session journal, for review after a deploy.

Journal values may come from the remote host and are treated as hostile: Markdown metacharacters are
backslash-escaped, ``|`` never splits a table cell, inline code is fenced so backticks cannot break out,
and control characters (C0, DEL, C1, line/paragraph separators, bidi overrides, lone surrogates) are
shown as ``\\xNN`` / ``\\uNNNN``. Unknown events are listed under "Other events", never dropped.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from todobox_deploy.journal.verify import JournalCheck, verify_entries, verify_journal

Entry = dict[str, Any]

_INVISIBLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_MARKDOWN = re.compile(r"([\\`*_\[\]<>&~|#])")
_COMMON = {"seq", "ts", "event", "operator", "host", "prev"}
_PHASE_EVENTS = {
    "phase_started",
    "phase_finished",
    "phase_by_hand",
    "phase_confirmed",
    "phase_not_confirmed",
    "phase_refused",
    "phase_abandoned",
    "cancel_requested",
    "phase_carried",
}


# --- escaping -------------------------------------------------------------------------------------------


def _visible(s: str) -> str:
    def esc(m: re.Match[str]) -> str:
        n = ord(m.group())
        return f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}"

    return _INVISIBLE.sub(esc, s)


def _plain(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)


def text(value: Any) -> str:
    """A journal value as inline Markdown text (safe in a table cell); ``None`` is a dash."""
    if value is None:
        return "—"
    return _visible(_MARKDOWN.sub(r"\\\1", _plain(value)))


def code(value: Any) -> str:
    """A journal value as inline code (safe in a table cell): the fence outnumbers any backtick run."""
    if value is None or value == "":
        return "—"
    s = _visible(_plain(value)).replace("|", "\\|")
    fence = "`" * (max((len(run) for run in re.findall("`+", s)), default=0) + 1)
    pad = " " if s[0] in "` " or s[-1] in "` " else ""
    return f"{fence}{pad}{s}{pad}{fence}"


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


def _who(e: Entry) -> str:
    return f"{text(e.get('operator'))} at {text(e.get('ts'))}"


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _seconds(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:.1f} s"
    return text(value)


# --- sections -------------------------------------------------------------------------------------------


def _chain_line(check: JournalCheck, recomputed: bool) -> str:
    how = " (recomputed from the parsed entries)" if recomputed else ""
    if check.ok:
        return f"**✅ Journal chain verifies**{how}: {text(check.reason)}"
    return f"**⚠ Journal chain does NOT verify**{how}: {text(check.reason)}"


def _session(entries: list[Entry], used: set[int]) -> list[str]:
    started = next((e for e in entries if e["event"] == "session_started"), None)
    ended = next((e for e in reversed(entries) if e["event"] == "session_ended"), None)
    for e in (started, ended):
        if e is not None:
            used.add(id(e))
    head = started or (entries[0] if entries else {})
    operators = sorted({str(e.get("operator")) for e in entries} - {str(head.get("operator"))})
    also = f" (also: {', '.join(text(o) for o in operators)})" if operators else ""
    end = ended or {}
    rows = [
        ["Operator", text(head.get("operator")) + also],
        ["Host", text(head.get("host"))],
        ["Config", code(head.get("config"))],
        ["Version", text(head.get("version"))],
        ["Machine", text(head.get("machine"))],
        ["PID", text(head.get("pid"))],
        ["Session directory", code(head.get("session_dir"))],
        ["Unfinished earlier session", code(head.get("unfinished_session"))],
        ["Started", text(head.get("ts"))],
        ["Ended", text(end.get("ts"))],
        ["Exit code", text(end.get("exit_code"))],
        ["End reason", text(end.get("reason"))],
    ]
    lines = ["## Session", "", *_table(["", ""], rows)]
    if ended is None:
        lines += ["**⚠ not ended**: no `session_ended`; the session is still open or the program died.", ""]
    for e in entries:
        if e["event"] == "lock_taken":
            used.add(id(e))
            lines.append(f"- Lock {code(e.get('path'))} taken by {_who(e)}")
            if e.get("take_over"):
                lines.append(f"\n**⚠ lock taken over** from {text(e.get('previous'))}\n")
        elif e["event"] == "lock_released":
            used.add(id(e))
            lines.append(f"- Lock released by {_who(e)}")
    return [*lines, ""]


def _resumes(entries: list[Entry], used: set[int]) -> list[str]:
    lines: list[str] = []
    for e in entries:
        if e["event"] != "resume_offered":
            continue
        used.add(id(e))
        rows = [
            [text(r[0]), text(r[1]), text(r[2])]
            for r in _list(e.get("rows"))
            if isinstance(r, list) and len(r) == 3
        ]
        verdict = "accepted" if e.get("accepted") else "declined: the deploy started over"
        carried = ", ".join(map(code, _list(e.get("carried")))) or "—"
        lines += [
            "## Resume of an unfinished session",
            "",
            f"From session {code(e.get('from_session'))}, offered to {_who(e)}: {verdict}. "
            f"Resume at {code(e.get('resume_at'))}; carried: {carried}.",
            "",
            *_table(["What", "The journal said", "The host showed"], rows),
            *[f"- ⚠ {text(w)}" for w in _list(e.get("warnings"))],
            "",
        ]
    return lines


def _context(entries: list[Entry], used: set[int]) -> list[str]:
    latest: dict[str, tuple[Any, Any]] = {}
    for e in entries:
        if e["event"] == "context_updated":
            used.add(id(e))
            for key, value in _dict(e.get("changes")).items():
                latest[key] = (value, e.get("ts"))
    rows = [[code(k), text(v), text(ts)] for k, (v, ts) in latest.items()]
    body = _table(["Field", "Value", "Set at"], rows) if rows else ["None recorded.", ""]
    return ["## Deploy context", "", *body]


def _run(e: Entry) -> list[str]:
    lines = [
        f"- Status: **{text(e.get('status'))}**",
        f"- Summary: {text(e.get('summary'))}",
        f"- Duration: {_seconds(e.get('seconds'))} (finished {text(e.get('ts'))})",
        "",
    ]
    facts = _dict(e.get("facts"))
    if facts:
        lines += _table(["Fact", "Value"], [[code(k), text(v)] for k, v in facts.items()])
    commands = [_dict(c) for c in _list(e.get("commands"))]
    if commands:
        rows = [
            [code(c.get("command")), text(c.get("exit_code")), _seconds(c.get("seconds"))] for c in commands
        ]
        lines += _table(["Command", "Exit code", "Duration"], rows)
    return lines


def _phase(name: str, evs: list[Entry]) -> list[str]:
    def of(*kinds: str) -> list[Entry]:
        return [e for e in evs if e["event"] in kinds]

    runs, starts = of("phase_finished"), of("phase_started")
    decisions = of("phase_confirmed", "phase_not_confirmed")
    flags = [f"**⚠ by hand**: marked done by hand by {_who(e)}" for e in of("phase_by_hand")]
    flags += [
        f"**carried over** from the resumed session: confirmed by {text(e.get('confirmed_by'))} at "
        f"{text(e.get('confirmed_at'))}{' (by hand)' if e.get('by_hand') else ''}"
        f"{' (unattended)' if e.get('unattended') else ''}"
        for e in of("phase_carried")
    ]
    flags += [f"**⚠ abandoned**: {text(e.get('reason'))} ({_who(e)})" for e in of("phase_abandoned")]
    flags += [
        f"**⚠ unattended**: confirmed unattended by {_who(e)}"
        for e in decisions
        if e["event"] == "phase_confirmed" and e.get("unattended")
    ]
    if not decisions and not of("phase_carried"):
        flags.append("**⚠ not confirmed**: never confirmed")
    elif decisions[-1]["event"] != "phase_confirmed":
        flags.append(f"**⚠ not confirmed**: last decision was 'not confirmed' by {_who(decisions[-1])}")
    status = runs[-1].get("status") if runs else None
    if status in ("failed", "cancelled"):
        flags.append(f"**⚠ {text(status)}**: the last run ended {text(status)}")
    if len(starts) > len(runs):
        flags.append("**⚠ unfinished**: started but never finished")
    lines = [f"### Phase {code(name)}", ""]
    for flag in flags:
        lines += [flag, ""]
    for e in starts:
        lines.append(
            f"- Started by {_who(e)}; open items: {', '.join(map(code, _list(e.get('open_items')))) or '—'}"
        )
    for e in decisions:
        verb = "Confirmed" if e["event"] == "phase_confirmed" else "Not confirmed"
        unattended = " (unattended)" if e.get("unattended") else ""
        lines.append(
            f"- {verb} by {_who(e)}{unattended}: node {code(e.get('node'))}, status {text(e.get('status'))}, "
            f"{text(e.get('summary'))}"
        )
    lines += [f"- Refused at {text(e.get('ts'))}: {text(e.get('reason'))}" for e in of("phase_refused")]
    lines += [f"- Cancel requested by {_who(e)}" for e in of("cancel_requested")]
    lines.append("")
    for k, e in enumerate(runs, start=1):
        if len(runs) > 1:
            lines += [f"#### Run {k} of {len(runs)}", ""]
        lines += _run(e)
    return lines


def _phases(entries: list[Entry], used: set[int]) -> list[str]:
    phases: dict[str, list[Entry]] = {}
    for e in entries:
        if e["event"] in _PHASE_EVENTS:
            used.add(id(e))
            phases.setdefault(str(e.get("phase")), []).append(e)
    lines = ["## Phases", ""]
    if not phases:
        lines += ["None.", ""]
    for name, evs in phases.items():
        lines += _phase(name, evs)
    return lines


def _items(entries: list[Entry], used: set[int]) -> list[str]:
    rows = []
    for e in entries:
        if e["event"] in ("item_confirmed", "item_unconfirmed"):
            used.add(id(e))
            action = "confirmed" if e["event"] == "item_confirmed" else "unconfirmed"
            flag = "**⚠ unattended**" if e.get("unattended") else ""
            rows.append([code(e.get("item")), text(e.get("title")), action, _who(e), flag])
    body = _table(["Item", "Title", "Action", "By", ""], rows) if rows else ["None.", ""]
    return ["## Manual items", "", *body]


def _execs(entries: list[Entry], used: set[int]) -> list[str]:
    rows = []
    for e in entries:
        if e["event"] == "exec_command":
            used.add(id(e))
            rows.append(
                [
                    _who(e),
                    code(e.get("command")),
                    text(e.get("exit_code")),
                    _seconds(e.get("seconds")),
                    "yes" if e.get("app") else "no",
                    "yes" if e.get("detached") else "no",
                ]
            )
    headers = ["By", "Command", "Exit code", "Duration", "As app user", "Detached"]
    body = _table(headers, rows) if rows else ["None.", ""]
    return ["## Commands run by hand (`exec`)", "", *body]


def _reconnects(entries: list[Entry], used: set[int]) -> list[str]:
    found = [e for e in entries if e["event"] == "connection_reestablished"]
    used.update(id(e) for e in found)
    lines = [f"- {_who(e)}: {text(e.get('reason'))}" for e in found]
    return ["## Reconnects", "", *(lines or ["None."]), ""]


def _others(entries: list[Entry], used: set[int]) -> list[str]:
    rest = [e for e in entries if id(e) not in used]
    if not rest:
        return []
    lines = ["## Other events", ""]
    for e in rest:
        fields = "; ".join(f"{code(k)}: {text(v)}" for k, v in e.items() if k not in _COMMON)
        lines.append(f"- #{text(e.get('seq'))} {code(e['event'])} by {_who(e)}: {fields or '—'}")
    return [*lines, ""]


# --- entry points ---------------------------------------------------------------------------------------


def _normalise(entries: list[Any]) -> list[Entry]:
    out: list[Entry] = []
    for e in entries:
        e = dict(e) if isinstance(e, dict) else {"event": "(not an object)", "value": e}
        e["event"] = str(e.get("event"))
        out.append(e)
    return out


def journal_report(entries: list[Entry], *, check: JournalCheck | None = None) -> str:
    """The Markdown report of a journal's entries; ``check`` is the file's verification, if done."""
    chain = _chain_line(check or verify_entries(entries), recomputed=check is None)
    items = _normalise(entries)
    used: set[int] = set()
    lines = ["# Deploy session report", "", chain, ""]
    for section in (_session, _resumes, _context, _phases, _items, _execs, _reconnects, _others):
        lines += section(items, used)
    return "\n".join(lines).rstrip("\n") + "\n"


def report_file(path: Path) -> str:
    """Verify the journal at ``path``, then report it; lines that are not JSON objects are listed too."""
    check = verify_journal(path)
    entries: list[Entry] = []
    data = path.read_bytes() if path.exists() else b""
    for n, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            entry = json.loads(raw)
        except ValueError:
            entry = None
        if not isinstance(entry, dict):
            entry = {"event": "(unreadable line)", "line": n, "text": raw[:500].decode("utf-8", "replace")}
        entries.append(entry)
    return journal_report(entries, check=check)
