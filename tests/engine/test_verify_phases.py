"""Checklist steps 6 and 8: verify_migration and post_verify.

Decision logic against a fake DB cursor and a scripted session; the shipped HTTP check program against a
tiny local HTTP server with a login form, a CSRF token and a session cookie; both phases on the sandbox.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
import secrets
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pymysql
import pytest

from todobox_deploy.config import (
    DeployConfig,
    ExpectedSchema,
    HttpCheck,
    load_config,
)
from todobox_deploy.core.context import DeployContext
from todobox_deploy.core.envfile import password_in_env_text
from todobox_deploy.core.outcome import PhaseOutcome, PhaseStatus
from todobox_deploy.core.streams import Stream
from todobox_deploy.engine import http_checks
from todobox_deploy.engine.phases.post_verify import (
    conclude,
    judge_exit,
    judge_http,
    judge_log,
    parse_offset,
    parse_stamp,
    post_verify,
    scan_log,
)
from todobox_deploy.engine.phases.spec import PhaseBody, PhaseCall
from todobox_deploy.engine.phases.verify_migration import (
    Check,
    grants_cover,
    normalize_type,
    verify_migration,
)
from todobox_deploy.engine.session import DeploySession
from todobox_deploy.remote.connection import SshConnection
from todobox_deploy.remote.secrets import Secrets
from todobox_deploy.sandbox.http import http_status
from todobox_deploy.sandbox.manager import SandboxInfo

from .test_phase_logic import CONFIG, Result, ScriptedSession

GRANT_DB = "GRANT ALL PRIVILEGES ON `todobox`.* TO `todobox`@`%`"
HEAD = "d1f2e3c4b5a6"

# -- a fake MySQL server: a schema state answering the phase's read-only queries ----------------------


@dataclass
class FakeDB:
    tables: list[str] = field(default_factory=lambda: ["alembic_version", "user"])
    grants: list[str] = field(default_factory=lambda: ["GRANT USAGE ON *.* TO `todobox`@`%`", GRANT_DB])
    versions: list[str] = field(default_factory=lambda: [HEAD])
    columns: dict[tuple[str, str], str] = field(
        default_factory=lambda: {("user", "api_token"): "varchar(64)"}
    )
    # (key name, column, seq, non_unique, sub_part)
    indexes: list[tuple[str, str, int, int, int | None]] = field(
        default_factory=lambda: [
            ("PRIMARY", "id", 1, 0, None),
            ("ix_user_api_token", "api_token", 1, 0, None),
        ]
    )
    deny: str | None = None  # a query containing this is refused (1142)
    queries: list[str] = field(default_factory=list)
    closed: bool = False

    def cursor(self) -> FakeCursor:
        return FakeCursor(self)

    def close(self) -> None:
        self.closed = True


class FakeCursor:
    def __init__(self, db: FakeDB) -> None:
        self.db = db
        self.description: Any = None
        self._rows: list[tuple[Any, ...]] = []

    def __enter__(self) -> FakeCursor:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._rows

    def _set(self, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
        self.description = [(c,) for c in columns]
        self._rows = rows

    def execute(self, sql: str, args: Any = None) -> int:
        db = self.db
        db.queries.append(sql)
        if db.deny and db.deny in sql:
            raise pymysql.err.OperationalError(1142, f"command denied to user 'todobox' for '{db.deny}'")
        m = re.search(r"FROM `(\w+)`", sql)
        table = m[1] if m else ""
        if sql.startswith("SHOW TABLES"):
            self._set(["Tables_in_todobox"], [(t,) for t in db.tables])
        elif sql == "SHOW GRANTS":
            self._set(["Grants for todobox@%"], [(g,) for g in db.grants])
        elif "alembic_version" in sql:
            self._set(["version_num"], [(v,) for v in db.versions])
        elif "information_schema.COLUMNS" in sql:
            _, tbl, col = args
            typ = db.columns.get((tbl, col))
            self._set(
                ["COLUMN_NAME", "COLUMN_TYPE", "IS_NULLABLE", "COLUMN_KEY"],
                [] if typ is None else [(col, typ, "YES", "UNI")],
            )
        elif sql.startswith("SHOW COLUMNS"):
            typ = db.columns.get((table, args[0]))
            cols = ["Field", "Type", "Null", "Key", "Default", "Extra"]
            self._set(cols, [] if typ is None else [(args[0], typ, "YES", "UNI", None, "")])
        elif sql.startswith("SHOW INDEX"):
            by = 0 if "Key_name" in sql else 1
            rows = [r for r in db.indexes if r[by] == args[0]]
            cols = ["Table", "Non_unique", "Key_name", "Seq_in_index", "Column_name", "Sub_part"]
            self._set(cols, [(table, r[3], r[0], r[2], r[1], r[4]) for r in rows])
        else:
            raise AssertionError(f"unexpected query {sql}")
        return len(self._rows)


class DbSession(ScriptedSession):
    def __init__(
        self, db: FakeDB | None = None, config: DeployConfig = CONFIG, script: dict[str, Result] | None = None
    ) -> None:
        super().__init__(script or {}, config)
        self.db = db or FakeDB()
        self.secrets = Secrets()
        self.stdin: list[bytes | None] = []

    def open_db(self, **_: Any) -> FakeDB:
        return self.db

    def capture(self, argv: Sequence[str] | str, *, display: str | None = None, **kw: Any) -> Result:
        self.stdin.append(kw.get("stdin"))
        return super().capture(argv, display=display)

    def run(self, argv: Sequence[str] | str, sink: Any, *, display: str | None = None, **kw: Any) -> int:
        self.stdin.append(kw.get("stdin"))
        return super().run(argv, sink, display=display)


def _call(session: Any, context: DeployContext | None = None) -> tuple[PhaseCall, list[tuple[Stream, str]]]:
    seen: list[tuple[Stream, str]] = []
    call = PhaseCall(
        session, lambda s, ls: seen.extend((s, x) for x in ls), threading.Event(), context or DeployContext()
    )
    return call, seen


def _verify(db: FakeDB, expect: tuple[ExpectedSchema, ...] = ()) -> tuple[PhaseOutcome, PhaseCall, str]:
    mig = dataclasses.replace(CONFIG.migration, expect=expect)
    session = DbSession(db, dataclasses.replace(CONFIG, migration=mig))
    call, seen = _call(session)
    outcome = verify_migration(call)
    assert db.closed
    return outcome, call, "\n".join(line for _, line in seen)


VARCHAR = ExpectedSchema("user", "api_token", "VARCHAR(64)", "ix_user_api_token", True)


def test_verify_migration_ok_shows_the_checklists_queries_done_right() -> None:
    outcome, call, text = _verify(FakeDB(), (VARCHAR,))
    assert outcome.status is PhaseStatus.OK, outcome.summary
    assert call.context.db_revision_after == HEAD
    assert outcome.fact("alembic_version") == HEAD
    assert outcome.fact("user.api_token") == "varchar(64) NULL"
    assert outcome.fact("index ix_user_api_token") == "unique on (api_token)"
    assert "$ SHOW COLUMNS FROM `user` WHERE Field = 'api_token';" in text
    assert "$ SHOW INDEX FROM `user` WHERE Column_name = 'api_token';" in text
    assert "DESCRIBE" not in text
    assert f"alembic_version {HEAD}; user.api_token varchar(64) NULL" in outcome.summary


def test_the_default_expectation_comes_from_table_column_index() -> None:
    outcome, _, _ = _verify(FakeDB())  # no [[migration.expect]]: user.api_token + unique ix_user_api_token
    assert outcome.status is PhaseStatus.OK, outcome.summary


def test_bug_state_names_the_missing_column_and_index() -> None:
    db = FakeDB(versions=["c682ef478e45"], columns={}, indexes=[("PRIMARY", "id", 1, 0, None)])
    outcome, call, text = _verify(db)
    assert outcome.status is PhaseStatus.FAILED
    assert "user.api_token is MISSING" in outcome.summary
    assert "index ix_user_api_token is MISSING" in outcome.summary
    assert f"alembic_version is c682ef478e45, not {HEAD}" in outcome.summary
    assert call.context.db_revision_after == "c682ef478e45"  # what is there, established either way
    assert "Empty set" in text


def test_type_mismatch_fails() -> None:
    outcome, _, _ = _verify(FakeDB(), (dataclasses.replace(VARCHAR, type="varchar(32)"),))
    assert outcome.status is PhaseStatus.FAILED
    assert "user.api_token is varchar(64), expected varchar(32)" in outcome.summary


def test_type_comparison_ignores_case_spaces_and_integer_display_width() -> None:
    assert normalize_type("INT(11)  UNSIGNED") == normalize_type("int unsigned")
    assert normalize_type("VARCHAR(64)") == "varchar(64)"
    assert normalize_type("varchar(64)") != normalize_type("varchar(65)")


def test_non_unique_index_fails() -> None:
    db = FakeDB(indexes=[("ix_user_api_token", "api_token", 1, 1, None)])
    outcome, _, _ = _verify(db, (VARCHAR,))
    assert outcome.status is PhaseStatus.FAILED
    assert "index ix_user_api_token is not unique" in outcome.summary
    assert outcome.fact("index ix_user_api_token") == "non-unique on (api_token) (failed)"


def test_index_on_the_wrong_column_fails() -> None:
    db = FakeDB(indexes=[("ix_user_api_token", "email", 1, 0, None)])
    outcome, _, _ = _verify(db, (VARCHAR,))
    assert outcome.status is PhaseStatus.FAILED
    assert "index ix_user_api_token covers (email), not (api_token)" in outcome.summary


def test_composite_or_prefix_index_fails() -> None:
    db = FakeDB(
        indexes=[("ix_user_api_token", "email", 2, 0, None), ("ix_user_api_token", "api_token", 1, 0, None)]
    )
    outcome, _, _ = _verify(db, (VARCHAR,))
    assert "covers (api_token, email), not (api_token)" in outcome.summary
    db = FakeDB(indexes=[("ix_user_api_token", "api_token", 1, 0, 10)])
    outcome, _, _ = _verify(db, (VARCHAR,))
    assert "covers only the first 10 characters of api_token" in outcome.summary


def test_unnamed_unique_expectation_takes_any_single_column_unique_index() -> None:
    expect = (ExpectedSchema("user", "api_token", unique=True),)
    db = FakeDB(indexes=[("api_token", "api_token", 1, 0, None)])
    assert _verify(db, expect)[0].status is PhaseStatus.OK
    db = FakeDB(indexes=[("ix_tok", "api_token", 1, 1, None)])
    outcome, _, _ = _verify(db, expect)
    assert outcome.status is PhaseStatus.FAILED
    assert (
        "unique index on user.api_token is MISSING (found ix_tok: non-unique on (api_token))"
        in outcome.summary
    )


def test_two_alembic_rows_fail_and_establish_nothing() -> None:
    outcome, call, _ = _verify(FakeDB(versions=[HEAD, "deadbeef0000"]))
    assert outcome.status is PhaseStatus.FAILED
    assert "alembic_version has 2 rows" in outcome.summary and "multiple heads" in outcome.summary
    assert call.context.db_revision_after is None


def test_an_empty_or_missing_alembic_version_fails() -> None:
    assert "not stamped" in _verify(FakeDB(versions=[]))[0].summary
    outcome, call, _ = _verify(FakeDB(tables=["user"]))
    assert outcome.status is PhaseStatus.FAILED
    assert "table alembic_version does not exist in todobox" in outcome.summary
    assert call.context.db_revision_after is None


def test_a_table_the_user_cannot_see_is_cannot_verify_never_missing() -> None:
    # only column-level grants on one table of another database: nothing here is definitely absent
    db = FakeDB(tables=[], grants=["GRANT USAGE ON *.* TO `todobox`@`%`", "GRANT SELECT ON `other`.* TO x"])
    outcome, _, _ = _verify(db)
    assert outcome.status is PhaseStatus.FAILED
    assert outcome.summary.startswith("cannot verify")
    assert "MISSING" not in outcome.summary and "does not exist" not in outcome.summary
    assert outcome.fact("user.api_token") == "not visible (cannot verify)"


def test_a_column_hidden_by_column_level_grants_is_cannot_verify() -> None:
    grants = ["GRANT SELECT (`id`, `username`) ON `todobox`.`user` TO `todobox`@`%`"]
    db = FakeDB(tables=["alembic_version", "user"], grants=grants, columns={}, indexes=[])
    outcome, _, _ = _verify(db)
    assert outcome.status is PhaseStatus.FAILED
    assert "cannot verify user.api_token" in outcome.summary
    assert "is MISSING" not in outcome.summary


def test_a_refused_query_is_cannot_verify_with_the_servers_reason() -> None:
    outcome, _, _ = _verify(FakeDB(deny="SHOW INDEX"))
    assert outcome.status is PhaseStatus.FAILED
    assert "cannot verify user.api_token: (1142) command denied" in outcome.summary
    outcome, _, _ = _verify(FakeDB(deny="SHOW GRANTS"))
    assert outcome.summary.startswith("cannot verify: (1142)")


def test_grants_cover() -> None:
    assert grants_cover(["GRANT SELECT ON *.* TO `u`@`%`"], "todobox")
    assert grants_cover([GRANT_DB], "todobox")
    assert grants_cover(["GRANT SELECT, INSERT ON `todo%`.* TO u"], "todobox")
    assert grants_cover(["GRANT SELECT ON `todo\\_box`.* TO u"], "todo_box")
    assert not grants_cover(["GRANT SELECT ON `todo\\_box`.* TO u"], "todoxbox")
    assert not grants_cover(["GRANT USAGE ON *.* TO `u`@`%` IDENTIFIED BY PASSWORD '*AB'"], "todobox")
    assert not grants_cover([GRANT_DB.replace("todobox", "other")], "todobox")
    assert not grants_cover(["GRANT `app_role` TO `u`@`%`"], "todobox")
    table = "GRANT SELECT ON `todobox`.`user` TO u"
    assert grants_cover([table], "todobox", "user") and not grants_cover([table], "todobox")
    column_only = "GRANT SELECT (`id`), UPDATE (`a`, `b`) ON `todobox`.`user` TO u"
    assert not grants_cover([column_only], "todobox", "user")
    assert grants_cover(["GRANT INSERT (`a`), SELECT ON `todobox`.`user` TO u"], "todobox", "user")


# -- post_verify: the log scan ---------------------------------------------------------------------

SINCE = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)
PLUS_ONE = timezone(timedelta(hours=1))


def test_parse_stamp_formats() -> None:
    assert parse_stamp("2026-11-30 12:00:00,123 ERROR [app] x") == datetime(2026, 11, 30, 12, 0, 0)
    assert parse_stamp("2026-11-30 12:00:00 0 [Note] mariadbd: ready") == datetime(2026, 11, 30, 12, 0, 0)
    assert parse_stamp("2026-11-30T12:00:00Z started") == SINCE
    gunicorn = parse_stamp("[2026-11-30 13:00:01 +0100] [42] [INFO] Booting worker")
    assert gunicorn == SINCE + timedelta(seconds=1)
    access = parse_stamp('127.0.0.1 - - [30/Nov/2026:12:00:02 +0000] "GET /users HTTP/1.1" 200 17')
    assert access == SINCE + timedelta(seconds=2)
    assert parse_stamp("Traceback (most recent call last):") is None
    assert parse_stamp("2026-13-45 99:00:00 nonsense") is None
    assert parse_offset("+0100\n") == PLUS_ONE and parse_offset("garbage") is None


OLD_AND_NEW = [
    '  File "x.py", line 1, in <module>',  # before the window's first stamp: dropped
    "2026-11-30 12:59:58,000 ERROR [app] Exception on /users [GET]",  # 11:59:58 UTC: before the start
    "Traceback (most recent call last):",
    "pymysql.err.OperationalError: (1054, \"Unknown column 'user.api_token' in 'field list'\")",
    "[2026-11-30 12:00:01 +0000] [7] [INFO] Booting worker with pid: 7",
    "2026-11-30 13:00:05,500 INFO [app] issued an API token for user 1",
]


def test_log_lines_before_the_start_are_ignored() -> None:
    scan = scan_log(OLD_AND_NEW, SINCE, PLUS_ONE)
    assert scan.unknown_column == [] and scan.errors == []
    assert scan.lines == 2 and scan.total == 6
    check = judge_log("Test 2: log app.log", scan, SINCE, False, PLUS_ONE)
    assert check.verdict == "ok" and "2 line(s) since 2026-11-30T12:00:00+00:00" in check.observed


def test_unknown_column_after_the_start_fails_and_a_traceback_warns() -> None:
    # the same lines in a host running UTC: the 12:59:58 error is after the start now
    scan = scan_log(OLD_AND_NEW, SINCE, UTC)
    assert len(scan.unknown_column) == 1 and len(scan.errors) == 2  # the ERROR line and the Traceback
    check = judge_log("Test 2: log app.log", scan, SINCE, False, UTC)
    assert check.verdict == "failed" and "1 'Unknown column' line(s)" in check.problem
    warn = scan_log(OLD_AND_NEW[:3], SINCE, UTC)
    assert judge_log("L", warn, SINCE, False, UTC).verdict == "warning"


def test_log_evidence_that_cannot_be_dated_is_cannot_verify() -> None:
    no_stamps = scan_log(["Traceback (most recent call last):", "boom"], SINCE, UTC)
    check = judge_log("L", no_stamps, SINCE, False, UTC)
    assert check.verdict == "cannot verify" and "no line has a timestamp" in check.problem
    local = scan_log(OLD_AND_NEW, SINCE, None)  # asctime is local time: the host's offset is needed
    assert judge_log("L", local, SINCE, False, None).verdict == "cannot verify"
    late = scan_log(OLD_AND_NEW[4:], SINCE, UTC)  # a cut window whose first line is after the start
    check = judge_log("L", late, SINCE, True, UTC)
    assert check.verdict == "cannot verify" and "earlier lines were not scanned" in check.problem
    assert judge_log("L", scan_log([], SINCE, UTC), SINCE, False, UTC).verdict == "ok"  # empty file


def test_judge_http() -> None:
    assert judge_http("T", {"status": 200, "expect": 200}).verdict == "ok"
    bounced = judge_http("T", {"status": 302, "expect": 200, "location": "/login", "body": ""})
    assert bounced.verdict == "failed" and bounced.observed == "302 -> /login"
    down = judge_http("T", {"status": None, "expect": 200, "error": "URLError: refused"})
    assert down.verdict == "cannot verify" and "refused" in down.problem
    broken_login = {"status": None, "error": "login: the login answered 500", "login": {"status": 500}}
    assert judge_http("T", broken_login).verdict == "failed"
    assert judge_http("T", None, "the check program exited 127").verdict == "cannot verify"


def test_conclude_ok_warning_failed() -> None:
    ok = [Check("a", "200"), Check("b", "exit 0")]
    crit = [("app starts", "met")]
    outcome = conclude(ok, crit)
    assert outcome.status is PhaseStatus.OK
    assert "app starts: met" in outcome.summary and "test 3 (login)" in outcome.summary
    assert outcome.fact("Test 3: login") == "manual: confirm it yourself"
    assert conclude([*ok, Check("c", "1 Traceback", "warning", "c: 1")], crit).status is PhaseStatus.WARNING
    unverified = conclude([*ok, Check("c", "?", "cannot verify", "cannot verify c")], crit)
    assert unverified.status is PhaseStatus.FAILED and "cannot verify c" in unverified.summary
    assert conclude([], crit).status is PhaseStatus.WARNING


# -- post_verify with a scripted host ------------------------------------------------------------------

APP = dataclasses.replace(
    CONFIG.app,
    check_url="http://127.0.0.1:5000/users",
    log_files=("/srv/log/app.log",),
    orm_check="print('ok')",
    checks=(
        HttpCheck(
            url="http://127.0.0.1:5000/account",
            name="account page",
            login_url="http://127.0.0.1:5000/login",
            login_form=(("username", "alice"), ("password", "s3cret-pw")),
            csrf_field="csrf_token",
        ),
    ),
)
POST_CONFIG = dataclasses.replace(CONFIG, app=APP)
UP = DeployContext(app_up_at="2026-11-30T12:00:00+00:00", db_revision_after=HEAD)


def _http_out(*statuses: int | None) -> str:
    return "\n".join(
        json.dumps({"status": s, "expect": 200, "error": None if s else "refused"}) for s in statuses
    )


def _post(
    context: DeployContext = UP, script: dict[str, Result] | None = None
) -> tuple[PhaseOutcome, DbSession, str]:
    defaults = {
        "http checks": Result(0, _http_out(200, 200, 200)),
        "date +%z": Result(0, "+0100\n"),
        "tail /srv/log/app.log": Result(0, "400\n" + "\n".join(OLD_AND_NEW)),
        "Test 4": Result(0, "✅ User query successful"),
    }
    session = DbSession(None, POST_CONFIG, {**defaults, **(script or {})})
    call, seen = _call(session, context)
    return post_verify(call), session, "\n".join(line for _, line in seen)


def test_post_verify_ok_names_the_success_criteria() -> None:
    outcome, session, _ = _post()
    assert outcome.status is PhaseStatus.OK, outcome.summary
    for criterion in ("migration completed", "app starts", "no Unknown column", "DB queries work"):
        assert f"{criterion}: met" in outcome.summary
    assert outcome.fact("Test 1: GET http://127.0.0.1:5000/health") == "200"
    assert outcome.fact("Test 1: account page") == "200"
    assert outcome.fact("Test 4: ORM query") == "exit 0: ✅ User query successful"
    assert (outcome.fact("Test 2: log /srv/log/app.log") or "").startswith("2 line(s) since")
    # the login password travels on stdin only, and is registered for redaction
    assert not any("s3cret-pw" in cmd for cmd in session.ran)
    assert any(data and b"s3cret-pw" in data for data in session.stdin)
    assert session.secrets.redact("s3cret-pw") == "[REDACTED]"
    assert any(data == b"print('ok')" for data in session.stdin)  # the snippet on stdin, not in argv


def test_post_verify_fails_on_a_500_and_on_no_answer() -> None:
    outcome, _, _ = _post(script={"http checks": Result(0, _http_out(200, 500, None))})
    assert outcome.status is PhaseStatus.FAILED
    assert "DB queries work: NOT met" in outcome.summary
    assert outcome.fact("Test 1: account page") == "refused (cannot verify)"
    lost, _, _ = _post(script={"http checks": Result(127, "", "python3: not found")})
    assert lost.status is PhaseStatus.FAILED
    assert "the check program exited 127: python3: not found" in lost.summary
    assert "app starts: not verified" in lost.summary


def test_post_verify_fails_on_unknown_column_since_the_start() -> None:
    outcome, _, text = _post(script={"date +%z": Result(0, "+0000")})
    assert outcome.status is PhaseStatus.FAILED
    assert "no Unknown column: NOT met" in outcome.summary
    assert "Unknown column 'user.api_token'" in text  # the line is shown


def test_post_verify_without_a_start_time_cannot_verify_the_log() -> None:
    outcome, _, _ = _post(DeployContext(db_revision_after=HEAD))
    assert outcome.status is PhaseStatus.FAILED
    assert "the time the app came up is unknown" in outcome.summary


def test_post_verify_fails_when_the_orm_check_fails() -> None:
    outcome, _, _ = _post(script={"Test 4": Result(1, "❌ Error: (1054, Unknown column)")})
    assert outcome.status is PhaseStatus.FAILED
    assert "Test 4: ORM query exited 1: ❌ Error: (1054, Unknown column)" in outcome.summary


def test_a_failed_snippet_is_summed_up_by_its_exception_line() -> None:
    output = [
        "Traceback (most recent call last):",
        "sqlalchemy.exc.OperationalError: (1054, \"Unknown column 'user.api_token'\")",
        "[SQL: SELECT user.id FROM user]",
        "(Background on this error at: https://sqlalche.me/e/21/e3q8)",
    ]
    check = judge_exit("Test 4: ORM query", 1, output)
    assert check.verdict == "failed" and check.observed.startswith("exit 1: sqlalchemy.exc.OperationalError")
    assert judge_exit("T", 0, ["", "ok: 1 user"]).observed == "exit 0: ok: 1 user"
    assert judge_exit("T", -1, []).verdict == "cannot verify"


# -- the shipped HTTP check program against a local login form ----------------------------------------


class _App(BaseHTTPRequestHandler):
    sessions: dict[str, str] = {}  # sid -> csrf token
    logged_in: set[str] = set()

    def log_message(self, *args: Any) -> None:
        pass

    def _cookie(self, name: str) -> str | None:
        for part in (self.headers.get("Cookie") or "").split(";"):
            key, _, value = part.strip().partition("=")
            if key == name:
                return value
        return None

    def _send(self, status: int, body: str = "", headers: dict[str, str] | None = None) -> None:
        data = body.encode()
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/login":
            sid, token = secrets.token_hex(8), secrets.token_hex(8)
            self.sessions[sid] = token
            form = (
                f'<form method="post"><input type="hidden" name="csrf_token" value="{token}">'
                '<input name="username"><input type="password" name="password"></form>'
            )
            self._send(200, form, {"Set-Cookie": f"sid={sid}; Path=/; HttpOnly"})
        elif self.path == "/account":
            if self._cookie("sid") in self.logged_in:
                self._send(200, "hello alice")
            else:
                self._send(302, "", {"Location": "/login"})
        elif self.path == "/boom":
            self._send(500, "Unknown column 'user.api_token'")
        else:
            self._send(404, "not here")

    def do_POST(self) -> None:  # noqa: N802
        form = dict(urllib.parse.parse_qsl(self.rfile.read(int(self.headers["Content-Length"])).decode()))
        sid = self._cookie("sid") or ""
        if self.path == "/login":
            if self.sessions.get(sid) != form.get("csrf_token"):
                self._send(400, "CSRF token missing or wrong")
            elif form.get("username") == "alice" and form.get("password") == "s3cret":
                self.logged_in.add(sid)
                self._send(302, "", {"Location": "/account"})
            else:
                self._send(200, "bad password")
        elif self.path == "/items":
            ok = sid in self.logged_in and form.get("title") == "milk"
            self._send(201 if ok else 403, "created" if ok else "no")
        else:
            self._send(404)


@pytest.fixture(scope="module")
def login_app() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _App)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _program(*checks: dict[str, Any]) -> list[dict[str, Any]]:
    spec = json.dumps({"timeout": 5, "checks": list(checks)})
    done = subprocess.run(
        [sys.executable, "-I", "-c", inspect.getsource(http_checks)],
        input=spec,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return [json.loads(line) for line in done.stdout.splitlines()]


def _login(base: str, password: str = "s3cret", field: str = "csrf_token") -> dict[str, Any]:
    return {
        "url": f"{base}/login",
        "form": [["username", "alice"], ["password", password]],
        "csrf_field": field,
    }


def test_login_with_csrf_then_the_check_in_the_same_session(login_app: str) -> None:
    account, items = _program(
        {"url": f"{login_app}/account", "expect_status": 200, "login": _login(login_app)},
        {
            "url": f"{login_app}/items",
            "method": "POST",
            "form": [["title", "milk"]],
            "expect_status": 201,
            "login": _login(login_app),
        },
    )
    assert account["status"] == 200 and account["login"]["csrf"] == "found", account
    assert account["login"]["status"] == 302 and account["login"]["location"] == "/account"
    assert items["status"] == 201, items
    assert judge_http("T", account).verdict == "ok" and judge_http("T", items).verdict == "ok"


def test_without_login_the_redirect_is_seen_not_followed(login_app: str) -> None:
    (result,) = _program({"url": f"{login_app}/account", "expect_status": 200})
    assert result["status"] == 302 and result["location"] == "/login"
    assert judge_http("T", result).verdict == "failed"


def test_a_wrong_password_or_a_missing_csrf_field_is_no_pass(login_app: str) -> None:
    wrong, no_field = _program(
        {"url": f"{login_app}/account", "expect_status": 200, "login": _login(login_app, "nope")},
        {"url": f"{login_app}/account", "expect_status": 200, "login": _login(login_app, field="_csrf")},
    )
    assert wrong["status"] == 302 and judge_http("T", wrong).verdict == "failed"
    assert no_field["status"] is None and "no input named '_csrf'" in no_field["error"]
    assert judge_http("T", no_field).verdict == "cannot verify"


def test_a_500_shows_the_body_and_bad_urls_are_no_answer(login_app: str) -> None:
    boom, bad, file_url, refused = _program(
        {"url": f"{login_app}/boom", "expect_status": 200},
        {"url": "not a url", "expect_status": 200},
        {"url": "file:///etc/passwd", "expect_status": 200},
        {"url": "http://127.0.0.1:9/", "expect_status": 200},
    )
    assert boom["status"] == 500 and "Unknown column" in boom["body"]
    for result in (bad, file_url, refused):
        assert result["status"] is None and result["error"], result
        assert judge_http("T", result).verdict == "cannot verify"


# -- on the sandbox -------------------------------------------------------------------------------------


def _run_body(
    body: PhaseBody, config: DeployConfig, tmp_path: Path, context: DeployContext | None = None
) -> tuple[PhaseOutcome, PhaseCall, str]:
    session = DeploySession(
        config,
        connection_factory=lambda: SshConnection(config.target, pinned_known_hosts=tmp_path / "pins"),
        environ={},
    )
    try:
        call, seen = _call(session, context)
        outcome = body(call)
    finally:
        session.close()
    return outcome, call, "\n".join(line for _, line in seen)


def _password(config: DeployConfig) -> str:
    password = password_in_env_text(Path(config.app.env_file or "").read_text(), "DATABASE_URL")
    assert password
    return password


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _wait_healthy(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if http_status(url, timeout=5) == 200:
                return
        except OSError:
            pass
        assert time.monotonic() < deadline, f"{url} did not come up"
        time.sleep(0.2)


ORM_CHECK = """
from app import app, db
from app.models import User
with app.app_context():
    user = db.session.execute(db.select(User).limit(1)).scalars().first()
    print("query ok:", user.username, "token set:", user.api_token is not None)
"""


def _with_checks(config: DeployConfig) -> DeployConfig:
    app = config.app
    assert app.check_url
    checks = (HttpCheck(url=app.check_url, name="user list"),)
    return dataclasses.replace(config, app=dataclasses.replace(app, orm_check=ORM_CHECK, checks=checks))


@pytest.mark.integration
@pytest.mark.timeout(180)
def test_bug_state_fails_verification(sandbox_reset: SandboxInfo, tmp_path: Path) -> None:
    config = load_config(sandbox_reset.config)
    outcome, call, text = _run_body(verify_migration, config, tmp_path)
    assert outcome.status is PhaseStatus.FAILED
    assert "user.api_token is MISSING" in outcome.summary
    assert "index ix_user_api_token is MISSING" in outcome.summary
    assert call.context.db_revision_after == "c682ef478e45"
    assert "$ SHOW COLUMNS FROM `user` WHERE Field = 'api_token';" in text and "Empty set" in text
    # the app is up but the user list fails with the production bug, after "the start"
    up = _now()
    assert http_status(config.app.check_url or "", timeout=20) == 500
    outcome, _, text = _run_body(post_verify, _with_checks(config), tmp_path, DeployContext(app_up_at=up))
    assert outcome.status is PhaseStatus.FAILED
    assert "no Unknown column: NOT met" in outcome.summary and "DB queries work: NOT met" in outcome.summary
    assert outcome.fact("Test 1: GET " + (config.app.health_url or "")) == "200"
    assert "Unknown column 'user.api_token'" in text
    assert "Unknown column" in (outcome.fact("Test 4: ORM query") or "")
    assert _password(config) not in text + outcome.summary


@pytest.mark.integration
@pytest.mark.timeout(240)
def test_after_the_upgrade_both_phases_pass(sandbox_reset: SandboxInfo, tmp_path: Path) -> None:
    config = load_config(sandbox_reset.config)
    app = config.app
    assert http_status(config.app.check_url or "", timeout=20) == 500  # an old Unknown column line
    subprocess.run(["git", "-C", app.path, "fetch", "-q", "origin"], check=True, timeout=60)
    subprocess.run(
        ["git", "-C", app.path, "merge", "-q", "--ff-only", "origin/master"], check=True, timeout=60
    )
    cli = [sys.executable, "-m", "todobox_deploy", "exec", "--config", str(sandbox_reset.config), "--app"]
    upgrade = subprocess.run(
        [*cli, "--", "flask", "db", "upgrade"], capture_output=True, text=True, timeout=120
    )
    assert upgrade.returncode == 0, upgrade.stdout + upgrade.stderr
    assert app.supervisor_config
    restart = [sys.executable, "-m", "supervisor.supervisorctl", "-c", app.supervisor_config, "restart"]
    subprocess.run([*restart, app.service_name], check=True, timeout=60, capture_output=True)
    assert app.health_url
    _wait_healthy(app.health_url)
    up = _now()

    outcome, call, text = _run_body(verify_migration, config, tmp_path)
    assert outcome.status is PhaseStatus.OK, outcome.summary
    assert call.context.db_revision_after == HEAD
    assert outcome.fact("index ix_user_api_token") == "unique on (api_token)"
    assert "varchar(64)" in (outcome.fact("user.api_token") or "")

    context = DeployContext(app_up_at=up, db_revision_after=HEAD)
    outcome, _, text = _run_body(post_verify, _with_checks(config), tmp_path, context)
    assert outcome.status is PhaseStatus.OK, outcome.summary
    assert outcome.fact("Test 1: user list") == "200"
    assert outcome.fact(f"Test 1: GET {app.check_url}") == "200"
    assert (outcome.fact("Test 4: ORM query") or "").startswith("exit 0: query ok:")
    assert all(c in outcome.summary for c in ("migration completed: met", "no Unknown column: met"))
    assert _password(config) not in text + outcome.summary
