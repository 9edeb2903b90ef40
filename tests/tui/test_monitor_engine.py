"""engine/monitor.py against a scripted session: which tails a config names, where MySQL's error log is
(configured, or asked of the server and fail-closed), and how a tail runs and stops."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pymysql
import pytest

from todobox_deploy.config import (
    AppConfig,
    BackupConfig,
    DatabaseConfig,
    DeployConfig,
    MigrationConfig,
    TargetConfig,
)
from todobox_deploy.core.streams import Stream
from todobox_deploy.engine.monitor import (
    TailSpec,
    discover_error_log,
    error_log_path,
    resolve,
    run_tail,
    tail_specs,
)
from todobox_deploy.remote.errors import CommandCancelled, LinkLost
from todobox_deploy.remote.secrets import Secrets

CONFIG = DeployConfig(
    TargetConfig(host="prod"),
    AppConfig(
        path="/srv/app", log_files=("/var/log/app/app.log", "/var/log/app/worker.log"), service_name="app"
    ),
    DatabaseConfig(name="app", user="app"),
    MigrationConfig(expected_head="d1f2e3c4b5a6"),
    BackupConfig(directory="/srv/backups"),
)


def _with_db(**changes: Any) -> DeployConfig:
    return dataclasses.replace(CONFIG, database=dataclasses.replace(CONFIG.database, **changes))


class _Cursor:
    def __init__(self, row: tuple[Any, ...] | None, fail: Exception | None) -> None:
        self.row, self.fail = row, fail

    def __enter__(self) -> _Cursor:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def execute(self, sql: str) -> None:
        assert sql == "SELECT @@log_error, @@datadir"
        if self.fail is not None:
            raise self.fail

    def fetchone(self) -> tuple[Any, ...] | None:
        return self.row


@dataclass
class _Db:
    row: tuple[Any, ...] | None
    fail: Exception | None = None
    closed: bool = False

    def cursor(self) -> _Cursor:
        return _Cursor(self.row, self.fail)

    def close(self) -> None:
        self.closed = True


@dataclass
class _Connection:
    lines: list[str] = field(default_factory=list)
    ends: str = "cancel"  # "cancel": wait for it; "exit": exit 1; "lost": the link drops
    argv: list[Sequence[str] | str] = field(default_factory=list)

    def run(
        self, argv: Sequence[str] | str, sink: Any, *, cancel: threading.Event, secrets: Secrets, **_: Any
    ) -> int:
        self.argv.append(argv)
        sink("stdout", list(self.lines))
        if self.ends == "exit":
            sink("stderr", ["tail: cannot open '/x' for reading: Permission denied"])
            return 1
        if self.ends == "lost":
            raise LinkLost("the SSH connection dropped")
        assert cancel.wait(5)
        raise CommandCancelled("cancelled")


@dataclass
class _Session:
    config: DeployConfig = CONFIG
    db: _Db | None = None
    connect_error: Exception | None = None
    connection: _Connection = field(default_factory=_Connection)
    secrets: Secrets = field(default_factory=Secrets)

    def open_db(self) -> _Db:
        if self.connect_error is not None:
            raise self.connect_error
        assert self.db is not None
        return self.db


def test_tails_follow_the_config() -> None:
    specs = tail_specs(CONFIG)
    assert [(s.id, s.kind, s.path) for s in specs] == [
        ("app-log-1", "file", "/var/log/app/app.log"),
        ("app-log-2", "file", "/var/log/app/worker.log"),
        ("mysql-error", "mysql_error", None),  # asked of the server when the screen opens
        ("journal", "journal", None),  # systemd: the unit's journal
    ]
    assert specs[0].argv() == ["tail", "-n", "200", "-F", "--", "/var/log/app/app.log"]
    assert specs[3].argv() == ["journalctl", "-u", "app", "-f", "-n", "50", "--no-pager"]
    assert specs[2].argv() is None
    supervised = dataclasses.replace(
        CONFIG, app=dataclasses.replace(CONFIG.app, service_manager="supervisor")
    )
    assert "journal" not in [s.id for s in tail_specs(supervised)]
    configured = tail_specs(_with_db(error_log="/var/log/mysql/error.log"))[2]
    assert (configured.path, configured.how) == ("/var/log/mysql/error.log", "[database] error_log")


@pytest.mark.parametrize(
    ("value", "datadir", "path"),
    [
        ("/var/log/mysql/error.log", "/var/lib/mysql/", "/var/log/mysql/error.log"),
        ("./db1.err", "/var/lib/mysql/", "/var/lib/mysql/db1.err"),
        ("db1.err", "/var/lib/mysql", "/var/lib/mysql/db1.err"),
        ("stderr", "/var/lib/mysql/", None),
        ("", "/var/lib/mysql/", None),
        ("./db1.err", None, None),
    ],
)
def test_error_log_path(value: str, datadir: str | None, path: str | None) -> None:
    assert error_log_path(value, datadir) == path


def test_error_log_is_asked_of_the_server_relative_to_the_datadir() -> None:
    session = _Session(db=_Db(("./prod-db.err", "/var/lib/mysql/")))
    found = discover_error_log(session)  # type: ignore[arg-type]
    assert found.path == "/var/lib/mysql/prod-db.err"
    assert "@@log_error = './prod-db.err'" in found.how and session.db is not None and session.db.closed
    session = _Session(config=_with_db(error_log="mysql/err.log"), db=_Db((b"/x.err", b"/data/")))
    assert discover_error_log(session).path == "/data/mysql/err.log"  # type: ignore[arg-type]
    session = _Session(config=_with_db(error_log="/var/log/mysql/e.log"))  # absolute: no question asked
    assert discover_error_log(session).path == "/var/log/mysql/e.log"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("session", "why"),
    [
        (_Session(db=_Db(("", "/var/lib/mysql/"))), "logs errors to its own stderr"),
        (_Session(db=_Db(("stderr", "/var/lib/mysql/"))), "logs errors to its own stderr"),
        (_Session(connect_error=pymysql.err.OperationalError(1045, "Access denied")), "cannot verify"),
        (_Session(db=_Db(None, fail=pymysql.err.OperationalError(1227, "denied"))), "cannot verify"),
        (_Session(config=_with_db(host="db.internal"), db=_Db(("/var/log/e.log", "/d/"))), "db.internal"),
    ],
)
def test_error_log_discovery_fails_closed(session: _Session, why: str) -> None:
    found = discover_error_log(session)  # type: ignore[arg-type]
    assert found.path is None and why in found.how


def test_resolve_skips_a_log_that_another_tab_follows() -> None:
    config = dataclasses.replace(
        CONFIG, app=dataclasses.replace(CONFIG.app, log_files=("/var/lib/mysql/e.err",))
    )
    session = _Session(config=config, db=_Db(("./e.err", "/var/lib/mysql/")))
    specs = tail_specs(config)
    spec, note = resolve(session, specs[1], specs)  # type: ignore[arg-type]
    assert spec.path is None and "already tailed as 'app: e.err'" in note
    alone = _Session(db=_Db(("./e.err", "/var/lib/mysql/")))
    spec, note = resolve(alone, tail_specs(CONFIG)[2], tail_specs(CONFIG))  # type: ignore[arg-type]
    assert spec.argv() == ["tail", "-n", "200", "-F", "--", "/var/lib/mysql/e.err"]


def _collect() -> tuple[list[tuple[Stream, str]], Any]:
    seen: list[tuple[Stream, str]] = []
    return seen, lambda stream, lines: seen.extend((stream, x) for x in lines)


def test_a_tail_runs_until_cancelled() -> None:
    session = _Session(connection=_Connection(lines=["a", "b"]))
    seen, sink = _collect()
    cancel = threading.Event()
    ended: list[str] = []
    spec = TailSpec("app-log-1", "app", "file", "/var/log/app/app.log")
    worker = threading.Thread(target=lambda: ended.append(run_tail(session, spec, sink, cancel)))  # type: ignore[arg-type]
    worker.start()
    cancel.set()
    worker.join(5)
    assert ended == ["stopped"]
    assert seen == [("info", "$ tail -n 200 -F -- /var/log/app/app.log"), ("stdout", "a"), ("stdout", "b")]


@pytest.mark.parametrize(
    ("ends", "said"), [("exit", "ended with exit status 1"), ("lost", "stopped: the SSH")]
)
def test_a_tail_that_ends_says_so(ends: str, said: str) -> None:
    session = _Session(connection=_Connection(ends=ends))
    seen, sink = _collect()
    spec = TailSpec("app-log-1", "app", "file", "/x")
    assert run_tail(session, spec, sink, threading.Event()).startswith(said)  # type: ignore[arg-type]
    assert seen[-1][0] == "error"
    assert (
        run_tail(session, TailSpec("m", "m", "mysql_error"), sink, threading.Event())
        == "not started: no path"
    )  # type: ignore[arg-type]
