"""The checklist's Common Issues as live patterns: each row once per session, no false alarm on routine
output (a health probe refused while the app is stopped, a request's traceback in the app log)."""

from __future__ import annotations

import threading

import pytest

from todobox_deploy.checklist import CHECKLIST
from todobox_deploy.engine.issues import ROWS, IssueWatch, issue_in, row_for

UNKNOWN = (
    'sqlalchemy.exc.OperationalError: (pymysql.err.OperationalError) (1054, "Unknown column '
    "'user.api_token' in 'field list'\")"
)


def test_rows_are_the_checklists_own() -> None:
    ids = [n.id for n in CHECKLIST.find("monitoring.issues").children]  # type: ignore[union-attr]
    assert [row.node_id for row in ROWS] == ids
    for row in ROWS:
        node = CHECKLIST.find(row.node_id)
        assert node is not None and row.title == node.title and row.solution == node.body
        assert row_for(row.node_id) is row
    assert row_for("reference.column") is None


@pytest.mark.parametrize(
    ("source", "line", "key"),
    [
        ("app-log-1", UNKNOWN, "unknown_column"),
        ("migrate", "ERROR 1054 (42S22): Unknown column 'api_token' in 'where clause'", "unknown_column"),
        ("app-log-1", "[2026-11-24 10:00:01 +0000] [42] [ERROR] Worker failed to boot.", "wont_start"),
        ("start_app", "Reason: App failed to load.", "wont_start"),
        ("start_app", "todobox                          FATAL     Exited too quickly", "wont_start"),
        ("journal", "gave up: todobox entered FATAL state, too many start retries too quickly", "wont_start"),
        (
            "journal",
            "Nov 24 10:00:01 host systemd[1]: Failed to start todobox.service - Todobox.",
            "wont_start",
        ),
        ("journal", "todobox.service: Failed with result 'exit-code'.", "wont_start"),
        ("start_app", "   Active: failed (Result: exit-code) since Tue", "wont_start"),
        ("start_app", "Traceback (most recent call last):", "wont_start"),
        ("app-log-1", "[ERROR] Connection in use: ('127.0.0.1', 5000)", "wont_start"),
        (
            "migrate",
            "pymysql.err.OperationalError: (1205, 'Lock wait timeout exceeded; try restarting')",
            "slow_db",
        ),
        ("mysql-error", "| 12 | todobox | Waiting for table metadata lock | ALTER TABLE user", "slow_db"),
        ("mysql-error", "# Query_time: 12.000213  Lock_time: 0.000101 Rows_sent: 1", "slow_db"),
        (
            "app-log-1",
            "(2003, \"Can't connect to MySQL server on '127.0.0.1' ([Errno 111] Connection refused)\")",
            "connection_refused",
        ),
        (
            "migrate",
            "ERROR 2002 (HY000): Can't connect to local MySQL server through socket",
            "connection_refused",
        ),
        (
            "app-log-1",
            "sqlalchemy.exc.OperationalError: Lost connection to MySQL server during query",
            "connection_refused",
        ),
        ("app-log-1", "database: connect to db:3306 failed: Connection refused", "connection_refused"),
    ],
)
def test_each_row_shows_in_its_lines(source: str, line: str, key: str) -> None:
    row = issue_in(source, line)
    assert row is not None and row.key == key
    assert [m.row.key for m in IssueWatch().feed(source, ["noise", line, "more noise"])] == [key]


@pytest.mark.parametrize(
    ("source", "line"),
    [
        # the stop phase's health probe: refused is what a stopped app answers, not a database problem
        (
            "stop_app",
            "GET http://127.0.0.1:5000/health (from the host): down ConnectionRefusedError "
            "[Errno 111] Connection refused",
        ),
        # a failing request's traceback in the app log is not the app failing to start
        ("app-log-1", "Traceback (most recent call last):"),
        ("migrate", "Traceback (most recent call last):"),
        ("app-log-1", "[2026-11-24 10:00:01 +0000] [42] [INFO] Shutting down: Master"),
        ("mysql-error", "2026-11-24 10:00:01 0 [Note] InnoDB: Buffer pool(s) load completed"),
        ("mysql-error", "# Query_time: 0.000213  Lock_time: 0.000101 Rows_sent: 1"),
        ("start_app", "todobox                          RUNNING   pid 42, uptime 0:00:03"),
        ("db_check", "user.api_token MISSING; ix_user_api_token MISSING"),
    ],
)
def test_routine_output_matches_nothing(source: str, line: str) -> None:
    assert issue_in(source, line) is None
    assert IssueWatch().feed(source, [line]) == []


def test_each_row_is_reported_once_per_session_with_its_first_line() -> None:
    watch = IssueWatch()
    first = watch.feed("app-log-1", ["GET /users 500", UNKNOWN, UNKNOWN + " again"])
    assert [(m.row.key, m.source, m.line) for m in first] == [("unknown_column", "app-log-1", UNKNOWN)]
    assert watch.feed("migrate", [UNKNOWN]) == []  # seen: never again this session
    both = watch.feed("start_app", ["Lock wait timeout exceeded", "Worker failed to boot."])
    assert [m.row.key for m in both] == ["slow_db", "wont_start"]  # in line order, several in one batch
    assert watch.seen == {"unknown_column", "slow_db", "wont_start"}
    assert [m.row.key for m in watch.matches] == ["unknown_column", "slow_db", "wont_start"]
    last = watch.feed("app-log-1", ["(2003, \"Can't connect to MySQL server on 'db'\")"])
    assert [m.row.key for m in last] == ["connection_refused"]
    assert watch.feed("app-log-1", [UNKNOWN, "Worker failed to boot."]) == []  # all seen: nothing left
    assert IssueWatch().feed("x", []) == []


def test_a_row_is_reported_once_when_threads_race() -> None:
    watch = IssueWatch()
    found: list[str] = []
    barrier = threading.Barrier(8)

    def feed() -> None:
        barrier.wait()
        found.extend(m.row.key for m in watch.feed("app-log-1", [UNKNOWN]))

    threads = [threading.Thread(target=feed) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert found == ["unknown_column"]


def test_the_plain_front_end_says_each_issue_once_and_journals_it() -> None:
    import io

    from todobox_deploy.engine.flow import DeployFlow
    from todobox_deploy.plain import Console, PlainRun

    class Recorder:
        def __init__(self) -> None:
            self.events: list[dict[str, object]] = []

        def record(self, event: str, **fields: object) -> dict[str, object]:
            self.events.append({"event": event, **fields})
            return self.events[-1]

    journal = Recorder()
    flow = DeployFlow(CHECKLIST, {}, session=None, operator="ann", host="prod", journal=journal)
    out = io.StringIO()
    console = Console(yes=True, stdout=out)
    PlainRun(flow, console)
    console.sink("stderr", [UNKNOWN, "\x1b[31mUnknown column 'x'"])
    console.sink("stdout", [UNKNOWN])
    said = [line for line in out.getvalue().splitlines() if line.startswith("!!")]
    assert said == [f"!! common issue: {ROWS[0].title}: {ROWS[0].action}"]
    assert journal.events == [
        {"event": "issue_matched", "row": "unknown_column", "source": "output", "line": UNKNOWN}
    ]


def test_only_what_the_host_said_is_matched_never_our_own_summary() -> None:
    """post_verify's summary says "no Unknown column: met": that is not the error appearing."""
    import io

    from todobox_deploy.plain import Console

    out = io.StringIO()
    console = Console(yes=True, stdout=out)
    console.sink("info", ["post_verify: ok: migration completed: met; no Unknown column: met"])
    assert "common issue" not in out.getvalue()
    console.sink("stderr", ["sqlalchemy.exc.OperationalError: (1054, \"Unknown column 'user.api_token'\")"])
    assert "!! common issue" in out.getvalue()
