"""The checklist's "Common Issues & Solutions" as patterns matched live against every stream.

Pure (no I/O, no Textual). :class:`IssueWatch` is fed batches of lines from phase output and monitoring
tails and reports each row the first time one of its patterns matches in the session; the front ends
journal that match (``flow.issue_matched``) and offer the row's action.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from todobox_deploy.checklist import CHECKLIST

ISSUES_NODE = "monitoring.issues"


@dataclass(frozen=True)
class IssuePattern:
    """One way a row shows in a line. ``literals``: one of them is in every matching line (a cheap
    prefilter over a whole batch); ``sources``: only lines from these streams (phase ids, tail ids);
    ``context``: the line must also match this (e.g. a bare "Connection refused" only next to MySQL)."""

    regex: re.Pattern[str]
    literals: tuple[str, ...]
    sources: frozenset[str] | None = None
    context: re.Pattern[str] | None = None

    def matches(self, source: str, line: str) -> bool:
        if self.sources is not None and source not in self.sources:
            return False
        if not any(lit in line for lit in self.literals) or not self.regex.search(line):
            return False
        return self.context is None or bool(self.context.search(line))


@dataclass(frozen=True)
class IssueRow:
    """One row of the table: its checklist node, the seed's solution, and this tool's suggested action."""

    key: str
    title: str
    solution: str
    action: str
    patterns: tuple[IssuePattern, ...]

    @property
    def node_id(self) -> str:
        return f"{ISSUES_NODE}.{self.key}"

    def matches(self, source: str, line: str) -> bool:
        return any(p.matches(source, line) for p in self.patterns)


@dataclass(frozen=True)
class IssueMatch:
    """A row seen for the first time this session: where, and the exact line (shown inert, never obeyed)."""

    row: IssueRow
    source: str
    line: str


def _row(key: str, action: str, *patterns: IssuePattern) -> IssueRow:
    """A row whose title and solution are the checklist's own (``monitoring.issues.<key>``)."""
    node = CHECKLIST.find(f"{ISSUES_NODE}.{key}")
    if node is None:
        raise ValueError(f"the checklist has no {ISSUES_NODE}.{key} row")
    return IssueRow(key, node.title, node.body, action, patterns)


def _p(
    literals: str | tuple[str, ...],
    regex: str,
    *,
    sources: Iterable[str] | None = None,
    context: str | None = None,
) -> IssuePattern:
    lits = (literals,) if isinstance(literals, str) else literals
    compiled = re.compile(regex)
    assert all(lit in regex.replace("\\", "") for lit in lits), (lits, regex)
    return IssuePattern(
        compiled,
        lits,
        frozenset(sources) if sources is not None else None,
        re.compile(context, re.IGNORECASE) if context else None,
    )


START_PHASES = frozenset({"start_app"})
"""Where a traceback means the app is not starting (elsewhere it is a request or a migration failing)."""

ROWS: tuple[IssueRow, ...] = (
    _row(
        "unknown_column",
        "the code expects a column the database lacks: check the DB revision (flask db current) and the "
        "column (SHOW COLUMNS); then run or re-run step 5 (migrate)",
        _p("Unknown column", r"Unknown column\b"),
    ),
    _row(
        "wont_start",
        "read the app's log where it failed and the service status",
        _p(("Worker failed to boot", "App failed to load"), r"Worker failed to boot|App failed to load"),
        _p("FATAL", r"\bentered FATAL state\b|^\S+\s+FATAL\s"),
        _p("BACKOFF", r"\bentered BACKOFF state\b|^\S+\s+BACKOFF\s"),
        _p("Active: failed", r"\bActive: failed\b"),
        _p("Failed to start", r"\bFailed to start\b"),
        _p(".service: ", r"\.service: (?:Failed with result\b|Main process exited, code=\w+, status=[1-9])"),
        _p(("Connection in use: ", "Address already in use"), r"Connection in use: |Address already in use"),
        _p("Error: ", r"^Error: (?:Could not import|While importing)"),
        _p("Traceback (most recent call last)", r"Traceback \(most recent call last\)", sources=START_PHASES),
    ),
    _row(
        "slow_db",
        "a migration or a long transaction holds a lock: see what runs (SHOW FULL PROCESSLIST); wait for "
        "the migration, or end the blocking session",
        _p("Lock wait timeout exceeded", r"Lock wait timeout exceeded"),
        _p("Waiting for table metadata lock", r"Waiting for table metadata lock"),
        _p("# Query_time: ", r"# Query_time: (?:[1-9]\d*)\.\d"),
    ),
    _row(
        "connection_refused",
        "make sure the database answers from the host: a connection check with the deploy's [database] "
        "settings",
        _p(
            "MySQL server",
            r"Can't connect to (?:local )?MySQL server|Lost connection to MySQL server|MySQL "
            r"server has gone away",
        ),
        _p(("(2003,", "ERROR 2003"), r"\(2003,|\bERROR 2003\b"),
        _p(
            "Connection refused",
            r"Connection refused",
            context=r"mysql|mariadb|\bsql|database|\bdb\b|:3306\b",
        ),
    ),
)

ROWS_BY_KEY: dict[str, IssueRow] = {row.key: row for row in ROWS}


def row_for(node_id: str) -> IssueRow | None:
    """The row of a checklist node id (``monitoring.issues.<key>``), or None."""
    prefix = ISSUES_NODE + "."
    return ROWS_BY_KEY.get(node_id[len(prefix) :]) if node_id.startswith(prefix) else None


def issue_in(source: str, line: str, rows: Sequence[IssueRow] = ROWS) -> IssueRow | None:
    """The first row ``line`` shows (seen before or not), or None: for "jump to the next error line"."""
    return next((row for row in rows if row.matches(source, line)), None)


def _literals(rows: Sequence[IssueRow]) -> tuple[str, ...]:
    """Every literal of ``rows``: a batch containing none of them cannot match (one fast scan each)."""
    return tuple(dict.fromkeys(lit for row in rows for p in row.patterns for lit in p.literals))


class IssueWatch:
    """Reports each row once per session, on the first line that shows it (thread-safe)."""

    def __init__(self, rows: Sequence[IssueRow] = ROWS) -> None:
        self._rows = tuple(rows)
        self._lock = threading.Lock()
        self._open: tuple[IssueRow, ...] = self._rows
        self._scan = _literals(self._open)
        self.matches: list[IssueMatch] = []

    @property
    def seen(self) -> frozenset[str]:
        """Keys of the rows already reported."""
        return frozenset(m.row.key for m in self.matches)

    def feed(self, source: str, lines: Sequence[str]) -> list[IssueMatch]:
        """The rows first seen in this batch (in line order); [] once every row has been seen."""
        literals = self._scan
        if not literals or not lines:
            return []
        text = "\n".join(lines)
        first = min((at for lit in literals if (at := text.find(lit)) != -1), default=-1)
        if first == -1:
            return []
        found: list[IssueMatch] = []
        with self._lock:
            skip = text.count("\n", 0, first)  # lines before the first possible hit cannot match
            for line in lines[skip:]:
                for row in self._open:
                    if row.key not in {m.row.key for m in found} and row.matches(source, line):
                        found.append(IssueMatch(row, source, line))
                if len(found) == len(self._open):
                    break
            if found:
                keys = {m.row.key for m in found}
                self._open = tuple(r for r in self._open if r.key not in keys)
                self._scan = _literals(self._open)
                self.matches.extend(found)
        return found
