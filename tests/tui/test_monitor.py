"""The cockpit in the wizard (Pilot, scripted flow and a scripted host): monitoring tails, common issues
matched live, the quick reference run with x, session-wide search, next error."""

from __future__ import annotations

import queue
import shlex
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from todobox_deploy.checklist import CHECKLIST
from todobox_deploy.config import (
    AppConfig,
    BackupConfig,
    DatabaseConfig,
    DeployConfig,
    MigrationConfig,
    TargetConfig,
)
from todobox_deploy.engine.flow import DeployFlow
from todobox_deploy.journal.journal import Journal
from todobox_deploy.remote.errors import CommandCancelled
from todobox_deploy.remote.secrets import Secrets
from todobox_deploy.tui.app import DeployApp, make_app
from todobox_deploy.tui.cockpit import QUICKREF, cockpit_for
from todobox_deploy.tui.screens.confirm import ConfirmPhase
from todobox_deploy.tui.screens.monitor import MonitorScreen
from todobox_deploy.tui.screens.search import SessionSearchScreen, TranscriptScreen
from todobox_deploy.tui.screens.wizard import WizardScreen
from todobox_deploy.tui.widgets.tail_pane import TailPane

from .conftest import FROZEN, JournalView, Script, ScriptedPhases

SIZE = (120, 36)
APP_LOG = "/var/log/todobox/app.log"
UNKNOWN = (
    'sqlalchemy.exc.OperationalError: (pymysql.err.OperationalError) (1054, "Unknown column '
    "'user.api_token' in 'field list'\")"
)
CONFIG = DeployConfig(
    target=TargetConfig(host="prod-app-1.example.com"),
    app=AppConfig(path="/srv/todobox", log_files=(APP_LOG,), service_name="todobox"),
    database=DatabaseConfig(name="todobox", user="todobox"),
    migration=MigrationConfig(expected_head="d1f2e3c4b5a6"),
    backup=BackupConfig(directory="/var/backups/todobox"),
)


class _Cursor:
    def __init__(self) -> None:
        self.description: tuple[tuple[str], ...] = ()
        self.rows: list[tuple[Any, ...]] = []

    def __enter__(self) -> _Cursor:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def execute(self, sql: str, params: Sequence[str] | None = None) -> None:
        if "@@log_error" in sql:
            self.description, self.rows = (
                (("@@log_error",), ("@@datadir",)),
                [("./db.err", "/var/lib/mysql/")],
            )
        elif sql.startswith("SHOW COLUMNS"):
            self.description, self.rows = (("Field",), ("Type",)), []
        else:
            self.description, self.rows = (("version_num",),), [("c682ef478e45",)]

    def fetchone(self) -> tuple[Any, ...] | None:
        return self.rows[0] if self.rows else None

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self.rows


class _Db:
    def cursor(self) -> _Cursor:
        return _Cursor()

    def close(self) -> None:
        pass


@dataclass
class FakeHost:
    """The session's host: ``tail -F`` / ``journalctl -f`` stream what tests push until cancelled; other
    commands answer by key."""

    feeds: dict[str, queue.Queue[list[str]]] = field(default_factory=dict)
    answers: dict[str, tuple[int, list[str]]] = field(
        default_factory=lambda: {"todobox_migrate": (0, ["c682ef478e45"]), "systemctl": (3, ["inactive"])}
    )
    ran: list[str] = field(default_factory=list)
    active: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def feed(self, key: str) -> queue.Queue[list[str]]:
        with self.lock:
            return self.feeds.setdefault(key, queue.Queue())

    def push(self, key: str, lines: list[str]) -> None:
        self.feed(key).put(lines)

    def run(
        self, argv: Sequence[str] | str, sink: Any, *, cancel: threading.Event | None = None, **_: Any
    ) -> int:
        text = argv if isinstance(argv, str) else shlex.join(argv)
        self.ran.append(text)
        if isinstance(argv, list) and argv[0] in ("tail", "journalctl"):
            return self._follow(argv[-1] if argv[0] == "tail" else "journal", sink, cancel)
        for key, (code, lines) in self.answers.items():
            if key in text:
                sink("stdout", lines)
                return code
        raise AssertionError(f"unscripted command: {text[:200]}")

    def _follow(self, key: str, sink: Any, cancel: threading.Event | None) -> int:
        assert cancel is not None
        feed = self.feed(key)
        with self.lock:
            self.active += 1
        try:
            while not cancel.is_set():
                try:
                    sink("stdout", feed.get(timeout=0.02))
                except queue.Empty:
                    continue
            raise CommandCancelled("cancelled")
        finally:
            with self.lock:
                self.active -= 1


@dataclass
class FakeSession:
    connection: FakeHost = field(default_factory=FakeHost)
    config: DeployConfig = CONFIG
    secrets: Secrets = field(default_factory=Secrets)
    on_reconnect: Any = None

    def db_password(self) -> str:
        return "pw"

    def open_db(self, **_: Any) -> _Db:
        return _Db()

    def take_commands(self) -> list[Any]:
        return []

    def capture(self, *_: Any, **__: Any) -> Any:
        raise AssertionError("not expected")


@pytest.fixture
def host() -> FakeHost:
    return FakeHost()


@pytest.fixture
def cockpit_app(
    scripted: ScriptedPhases, journal_path: Path, tmp_path: Path, host: FakeHost
) -> Callable[..., DeployApp]:
    def build(*, max_log_lines: int = 10_000, session: bool = True) -> DeployApp:
        flow = DeployFlow(
            CHECKLIST,
            scripted.specs(),
            session=FakeSession(host) if session else None,  # type: ignore[arg-type]
            operator="alice",
            host=CONFIG.target.host,
            journal=Journal(journal_path, operator="alice", host=CONFIG.target.host),
            transcript_dir=tmp_path / "transcripts",
            clock=lambda: FROZEN,
        )
        return make_app(flow, clock=lambda: FROZEN, max_log_lines=max_log_lines)

    return build


async def wait_for(pilot: Pilot[Any], predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return
        await pilot.pause(0.02)
    raise AssertionError("condition not met in time")


def _notes(app: DeployApp, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """(title, message) of each notification the app shows from now on."""
    seen: list[tuple[str, str]] = []
    original = app.notify

    def notify(message: str, *, title: str = "", **kwargs: Any) -> None:
        seen.append((title, message))
        original(message, title=title, **kwargs)

    monkeypatch.setattr(app, "notify", notify)
    return seen


def _events(journal: JournalView, name: str) -> list[dict[str, Any]]:
    return [e for e in journal if e["event"] == name]


def _monitor(app: DeployApp) -> MonitorScreen:
    assert isinstance(app.screen, MonitorScreen)
    return app.screen


def _pane(screen: MonitorScreen, tail_id: str) -> TailPane:
    pane = screen.pane(tail_id)
    assert pane is not None
    return pane


async def test_monitoring_tails_each_log_in_its_own_bounded_tab(
    cockpit_app: Callable[..., DeployApp], host: FakeHost
) -> None:
    app = cockpit_app()
    host.push(APP_LOG, [f"GET /health 200 #{i}" for i in range(3)])
    host.push("/var/lib/mysql/db.err", ["2026-11-24 [Note] mariadbd: ready for connections."])
    host.push("journal", ["Nov 24 todobox.service: Started."])
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("m")
        await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen))
        screen = _monitor(app)
        assert [s.id for s in screen.specs] == ["app-log-1", "mysql-error", "journal"]
        app_log, mysql, journal = (_pane(screen, i) for i in ("app-log-1", "mysql-error", "journal"))
        await wait_for(pilot, lambda: host.active == 3)
        await wait_for(pilot, lambda: len(app_log.window("app-log-1")) == 4)
        assert app_log.window("app-log-1")[0] == "» $ tail -n 200 -F -- /var/log/todobox/app.log"
        # the MySQL error log was asked of the server: relative to the datadir
        assert "tail -n 200 -F -- /var/lib/mysql/db.err" in host.ran
        await wait_for(pilot, lambda: "ready for connections" in "".join(mysql.window("mysql-error")))
        assert "/var/lib/mysql/db.err" in mysql.state and "@@log_error" in mysql.state
        await wait_for(pilot, lambda: "Started." in "".join(journal.window("journal")))
        assert screen.active_pane is app_log
        await pilot.press("right_square_bracket")
        assert screen.active_pane is mysql
        await pilot.press("left_square_bracket")
        assert screen.active_pane is app_log
        # bounded: 6,000 more lines keep at most max_lines in memory
        host.push(APP_LOG, [f"line {i}" for i in range(6_000)])
        await wait_for(pilot, lambda: app_log.window("app-log-1")[-1] == "  line 5999")
        assert len(app_log.window("app-log-1")) == app_log.max_lines == 5_000
        # search like the phase log
        await pilot.press("slash")
        await pilot.press(*"line 42", "enter")
        await wait_for(pilot, lambda: app_log.log_widget.match_line is not None)
        assert "line 42" in app_log.log_widget.lines[app_log.log_widget.match_line or 0]
        # scrolled back (the match): new lines are counted, f returns to the live tail
        assert not app_log.follow
        host.push(APP_LOG, [f"later {i}" for i in range(50)])
        await wait_for(pilot, lambda: app_log.new_lines >= 50)
        assert "new lines" in str(app_log.query_one("#log-status").render())
        await pilot.press("f")
        assert app_log.follow and app_log.new_lines == 0
        # back to the wizard: the tails go on; m again shows the same screen
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, WizardScreen))
        host.push(APP_LOG, ["while away"])
        await wait_for(pilot, lambda: app_log.window("app-log-1")[-1] == "  while away")
        assert host.active == 3
        await pilot.press("m")
        assert app.screen is screen
        await pilot.press("m")
        assert isinstance(app.screen, WizardScreen)
    await wait_for_threads(lambda: host.active == 0)  # the app closed: every tail stopped on the host


async def wait_for_threads(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return
        threading.Event().wait(0.02)
    raise AssertionError("condition not met in time")


async def test_monitoring_without_a_session_says_so(cockpit_app: Callable[..., DeployApp]) -> None:
    app = cockpit_app(session=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("m")
        screen = _monitor(app)
        assert screen.specs == ()
        assert "No SSH session" in str(screen.query_one("#monitor-where").render())


async def test_a_common_issue_in_a_tail_is_notified_journaled_once_and_one_key_away(
    cockpit_app: Callable[..., DeployApp],
    host: FakeHost,
    journal: JournalView,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = cockpit_app()
    notes = _notes(app, monkeypatch)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("m")
        screen = _monitor(app)
        host.push(APP_LOG, ["GET /users 500", UNKNOWN, UNKNOWN])
        await wait_for(pilot, lambda: bool(_events(journal, "issue_matched")))
        host.push(APP_LOG, [UNKNOWN])
        await wait_for(pilot, lambda: _pane(screen, "app-log-1").window("app-log-1")[-1] == "  " + UNKNOWN)
        matched = _events(journal, "issue_matched")
        assert [(e["row"], e["source"], e["line"]) for e in matched] == [
            ("unknown_column", "app-log-1", UNKNOWN)
        ]
        titles = [t for t, _ in notes if t.startswith("Common issue")]
        assert titles == ['Common issue: "Unknown column" error persists']
        message = next(m for t, m in notes if t == titles[0])
        assert "Press i: run flask db current and SHOW COLUMNS." in message and "Unknown column" in message
        # i: the checklist row in the details panel, and its checks run (output in the quick-reference log)
        await pilot.press("i")
        await wait_for(pilot, lambda: isinstance(app.screen, WizardScreen))
        wiz = app.screen
        assert isinstance(wiz, WizardScreen)
        await wait_for(pilot, lambda: wiz.selected.id == "monitoring.issues.unknown_column")
        await wait_for(pilot, lambda: len(_events(journal, "quickref_run")) == 2)
        runs = _events(journal, "quickref_run")
        assert [(e["id"], e["exit_code"]) for e in runs] == [
            ("reference.migration_status", 0),
            ("reference.column", 0),
        ]
        assert runs[1]["command"] == "SHOW COLUMNS FROM `user` WHERE Field = 'api_token'"
        pane = wiz.log_pane
        assert pane.viewing == QUICKREF
        await wait_for(pilot, lambda: "  (no rows)" in pane.window(QUICKREF))
        assert "  c682ef478e45" in pane.window(QUICKREF)


async def test_phase_output_matches_a_common_issue_once(
    cockpit_app: Callable[..., DeployApp], scripted: ScriptedPhases, journal: JournalView
) -> None:
    lock = "pymysql.err.OperationalError: (1205, 'Lock wait timeout exceeded; try restarting transaction')"
    scripted.scripts["backup"] = Script(lines=10, stderr=(lock, lock))
    app = cockpit_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("g")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmPhase))
        await wait_for(pilot, lambda: bool(_events(journal, "issue_matched")))
        assert [(e["row"], e["source"]) for e in _events(journal, "issue_matched")] == [("slow_db", "backup")]
        assert cockpit_for(app).last_issue is not None


async def test_x_runs_the_selected_reference_entry(
    cockpit_app: Callable[..., DeployApp],
    host: FakeHost,
    journal: JournalView,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = cockpit_app()
    notes = _notes(app, monkeypatch)
    async with app.run_test(size=SIZE) as pilot:
        wiz = app.screen
        assert isinstance(wiz, WizardScreen)
        await pilot.press("x")  # on a phase: nothing to run, and it says what x is for
        assert any("nothing to run" in m for _, m in notes)
        cockpit_for(app).show_row("reference.alembic_version")
        await wait_for(pilot, lambda: wiz.selected.id == "reference.alembic_version")
        await pilot.press("x")
        await wait_for(pilot, lambda: bool(_events(journal, "quickref_run")))
        run = _events(journal, "quickref_run")[0]
        assert (run["id"], run["command"], run["exit_code"]) == (
            "reference.alembic_version",
            "SELECT * FROM alembic_version",
            0,
        )
        await wait_for(pilot, lambda: "  c682ef478e45" in wiz.log_pane.window(QUICKREF))
        assert wiz.log_pane.window(QUICKREF)[:2] == [
            "» $ SELECT * FROM alembic_version   (PyMySQL over the SSH connection)",
            "» mysql> SELECT * FROM alembic_version",
        ]
        assert not _events(journal, "phase_started")  # read-only: no gate, no phase
        cockpit_for(app).show_row("monitoring.logs")
        await wait_for(pilot, lambda: wiz.selected.id == "monitoring.logs")
        await pilot.press("x")  # Logs to Watch: the monitoring screen
        assert isinstance(app.screen, MonitorScreen)


async def _run_and_confirm(pilot: Pilot[Any], app: DeployApp) -> None:
    await pilot.press("g")
    await wait_for(pilot, lambda: isinstance(app.screen, ConfirmPhase))
    await pilot.press("y")
    await wait_for(pilot, lambda: isinstance(app.screen, WizardScreen))


async def test_session_search_lists_hits_by_phase_and_jumps_to_them(
    cockpit_app: Callable[..., DeployApp], scripted: ScriptedPhases
) -> None:
    scripted.scripts["backup"] = Script(lines=300)
    scripted.scripts["preflight"] = Script(lines=50, stderr=("warning: line 27 of the config",))
    app = cockpit_app(max_log_lines=100)
    async with app.run_test(size=SIZE) as pilot:
        await _run_and_confirm(pilot, app)
        await _run_and_confirm(pilot, app)
        await pilot.press("ctrl+f")
        assert isinstance(app.screen, SessionSearchScreen)
        search = app.screen
        await pilot.press(*"line 27", "enter")
        await wait_for(pilot, lambda: search.done)
        assert search.first_result_seconds is not None
        by_source = [(h.source, h.content) for h in search.hits]
        assert by_source == [
            ("backup", "backup line 27"),
            *(("backup", f"backup line {i}") for i in range(270, 280)),
            ("preflight", "preflight line 27"),
            ("preflight", "warning: line 27 of the config"),
        ]
        state = search.query_one("#search-state")
        assert state.has_class("-filtering") and "/line 27/: 13 lines in 2 logs" in str(state.render())
        # a line still in the pane's window: the phase's log, scrolled to it, the filter on view
        search.choose(by_source.index(("backup", "backup line 277")))
        assert app.wizard is not None
        pane = app.wizard.log_pane
        await wait_for(pilot, lambda: pane.viewing == "backup" and pane.log_widget.match_line is not None)
        await pilot.pause(0.1)  # the tree's own highlight of the phase arrives, and changes nothing
        index = pane.log_widget.match_line
        assert index is not None and pane.log_widget.lines[index] == "  backup line 277"
        assert "/line 27: line" in str(pane.query_one("#log-status").render())
        assert pane.query_text == "line 27"
        # a line older than the window: the transcript, around it
        await pilot.press("ctrl+f")
        search = app.screen
        assert isinstance(search, SessionSearchScreen)
        await wait_for(pilot, lambda: search.done)  # the last query again
        search.choose(0)
        await wait_for(pilot, lambda: isinstance(app.screen, TranscriptScreen))
        excerpt = app.screen
        assert isinstance(excerpt, TranscriptScreen)
        log = excerpt.query_one("#transcript-log")
        assert log.match_line is not None and log.lines[log.match_line].endswith("  backup line 27")  # type: ignore[attr-defined]
        await pilot.press("escape")
        assert isinstance(app.screen, WizardScreen)


async def test_next_error_jumps_to_error_lines(
    cockpit_app: Callable[..., DeployApp], scripted: ScriptedPhases
) -> None:
    scripted.scripts["backup"] = Script(
        lines=120, stderr=("mysqldump: warning one", "mysqldump: warning two")
    )
    app = cockpit_app()
    async with app.run_test(size=SIZE) as pilot:
        await _run_and_confirm(pilot, app)
        wiz = app.wizard
        assert wiz is not None
        node = CHECKLIST.find_phase("backup")
        assert node is not None
        wiz.checklist_tree.select_id(node.id)
        await wait_for(pilot, lambda: wiz.log_pane.viewing == "backup")
        log = wiz.log_pane.log_widget
        await pilot.press("e")
        assert log.match_line is not None and log.lines[log.match_line] == "! mysqldump: warning one"
        assert not wiz.log_pane.follow
        await pilot.press("e")
        assert log.lines[log.match_line or 0] == "! mysqldump: warning two"
        await pilot.press("e")  # wraps around
        assert log.lines[log.match_line or 0] == "! mysqldump: warning one"
