"""The backup phase's decisions against a scripted session, and its shell parts run by a local bash."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from todobox_deploy.config import (
    AppConfig,
    BackupConfig,
    Compression,
    DatabaseConfig,
    DeployConfig,
    MigrationConfig,
    TargetConfig,
)
from todobox_deploy.core.context import BackupRecord, DeployContext
from todobox_deploy.core.outcome import PhaseOutcome, PhaseStatus
from todobox_deploy.core.streams import OutputSink
from todobox_deploy.engine import backup_cmd as bc
from todobox_deploy.engine.phases.backup import backup
from todobox_deploy.engine.phases.spec import PhaseCall
from todobox_deploy.remote.mysql import mysql_command
from todobox_deploy.remote.secrets import Secrets

DB = DatabaseConfig(name="todobox", user="todobox")
CONFIG = DeployConfig(
    TargetConfig(host="prod"),
    AppConfig(path="/srv/app"),
    DB,
    MigrationConfig(expected_head="d1f2e3c4b5a6"),
    BackupConfig(directory="/srv/backups", keep=2),
)
MARIADB = "10.11.19-MariaDB-0+deb12u1"
MARIADB_DUMP = "mariadb-dump  Ver 10.19 Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)"
MYSQL8_DUMP = "mysqldump  Ver 8.0.35 for Linux on x86_64 (MySQL Community Server - GPL)"
SHA = "ab" * 32
DF = ["Filesystem 1-blocks Used Available Capacity Mounted on", "/dev/vda 1000 10 {free} 1% /"]
TRAILER = "-- Dump completed on 2026-01-01 12:00:00"


# -- a scripted session -----------------------------------------------------------------------


class FakeCursor:
    def __init__(self, db: FakeDb) -> None:
        self.db = db
        self.rows: list[tuple[Any, ...]] = []

    def __enter__(self) -> FakeCursor:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def execute(self, sql: str, args: Any = None) -> None:
        if self.db.error:
            raise RuntimeError(self.db.error)
        if "VERSION()" in sql:
            self.rows = [(self.db.version,)]
        elif "SUM(DATA_LENGTH" in sql:
            self.rows = [(self.db.size,)]
        elif "TABLE_NAME" in sql:
            self.rows = [(t,) for t in self.db.tables]
        elif "gtid_mode" in sql:
            self.rows = [("ON",)]
        else:
            raise AssertionError(sql)

    def fetchone(self) -> Any:
        return self.rows[0] if self.rows else None

    def fetchall(self) -> Any:
        return self.rows


@dataclass
class FakeDb:
    version: str = MARIADB
    size: int | None = 100 * 2**20
    tables: tuple[str, ...] = ("alembic_version", "user")
    error: str | None = None
    closed: int = 0

    def cursor(self) -> FakeCursor:
        return FakeCursor(self)

    def close(self) -> None:
        self.closed += 1


@dataclass
class Answer:
    rc: int = 0
    out: list[str] = field(default_factory=list)


@dataclass
class FakeConnection:
    states: dict[str, tuple[str, int | None, int | None]] = field(default_factory=dict)
    attached: list[str] = field(default_factory=list)
    attach_rc: int = 0

    def run_state(self, run_id: str) -> tuple[str, int | None, int | None]:
        return self.states.get(run_id, ("absent", None, None))

    def attach(self, run_id: str, sink: OutputSink, **_: Any) -> int:
        self.attached.append(run_id)
        return self.attach_rc


@dataclass
class FakeSession:
    """Answers host commands by the first key found in their display text; records what ran."""

    answers: dict[str, Answer]
    config: DeployConfig = CONFIG
    db: FakeDb = field(default_factory=FakeDb)
    detached_rc: int = 0
    connection: FakeConnection = field(default_factory=FakeConnection)
    secrets: Secrets = field(default_factory=Secrets)
    ran: list[str] = field(default_factory=list)
    scripts: list[str] = field(default_factory=list)
    launched: list[tuple[str, str, bytes | None]] = field(default_factory=list)

    def _answer(self, argv: Sequence[str] | str, display: str | None) -> Answer:
        text = display or (argv if isinstance(argv, str) else " ".join(argv))
        self.ran.append(text)
        self.scripts.append(argv if isinstance(argv, str) else " ".join(argv))
        for key, answer in self.answers.items():
            if key in text:
                return answer
        raise AssertionError(f"unscripted command: {text}")

    def run(
        self, argv: Sequence[str] | str, sink: OutputSink, *, display: str | None = None, **_: Any
    ) -> int:
        answer = self._answer(argv, display)
        if answer.out:
            sink("stdout", list(answer.out))
        return answer.rc

    def capture(self, argv: Sequence[str] | str, *, display: str | None = None, **_: Any) -> Any:
        answer = self._answer(argv, display)
        return type("R", (), {"exit_status": answer.rc, "stdout": "\0".join(answer.out), "stderr": ""})()

    def run_detached(
        self, run_id: str, argv: str, sink: OutputSink, *, stdin: bytes | None = None, **_: Any
    ) -> int:
        self.launched.append((run_id, argv, stdin))
        if self.detached_rc:
            sink("stdout", ["gzip: stdout: No space left on device"])
        sink("stdout", [f"stage exit statuses: mariadb-dump 0, gzip {0 if self.detached_rc == 0 else 1}"])
        return self.detached_rc

    def open_db(self, **_: Any) -> FakeDb:
        return self.db

    def db_password(self) -> str:
        return "s3cret"


def prepared(free: int, programs: Sequence[tuple[str, str]] = (("mariadb-dump", MARIADB_DUMP),)) -> Answer:
    lines = [DF[0], DF[1].format(free=free)]
    lines += [f"P\t{name}\t/usr/bin/{name}\t{version}" for name, version in programs]
    return Answer(0, lines)


def read_back(
    size: int = 1234,
    last: str = TRAILER,
    tables: Sequence[str] = ("alembic_version", "user"),
    files: Sequence[str] = (),
) -> Answer:
    lines = [f"Z {size}", *(f"T CREATE TABLE `{t}` (" for t in tables), f"L {last}", "S 0 0", f"H {SHA}  /x"]
    return Answer(0, lines + [f"F {name}" for name in files])


def happy(**changes: Answer) -> dict[str, Answer]:
    answers = {
        "mkdir": prepared(10 * 2**30),
        "read back": read_back(),
        "rm -f": Answer(0),
        "mv ": Answer(0),
        "stat+sha256sum": Answer(0, ["1234", f"{SHA}  /x"]),
    }
    answers.update(changes)
    return answers


def run(
    session: FakeSession, context: DeployContext | None = None
) -> tuple[PhaseOutcome, PhaseCall, list[str]]:
    seen: list[str] = []
    call = PhaseCall(
        session,  # type: ignore[arg-type]
        lambda s, ls: seen.extend(f"{s}: {x}" for x in ls),
        threading.Event(),
        context or DeployContext(),
    )
    return backup(call), call, seen


# -- decisions --------------------------------------------------------------------------------


def test_refuses_when_the_dump_may_not_fit_and_says_which_numbers() -> None:
    session = FakeSession(happy(mkdir=prepared(50 * 2**20)))  # 50 MiB free, 100 MiB of data+index
    outcome, call, _ = run(session)
    assert outcome.status is PhaseStatus.FAILED
    assert "refused before dumping" in outcome.summary
    assert "50.0 MiB free" in outcome.summary and "116.0 MiB" in outcome.summary  # 100 MiB + 16 MiB margin
    assert "data+index 100.0 MiB" in outcome.summary
    assert session.launched == [] and call.context.backup_run is None


def test_plain_sql_needs_twice_the_data() -> None:
    cfg = replace(CONFIG, backup=replace(CONFIG.backup, compression="none"))
    session = FakeSession(happy(mkdir=prepared(200 * 2**20)), config=cfg)  # < 2 x 100 MiB + margin
    outcome, _, _ = run(session)
    assert outcome.status is PhaseStatus.FAILED and "x2 uncompressed" in outcome.summary


@pytest.mark.parametrize(
    ("db", "expect"),
    [
        (FakeDb(error="(2013, 'Lost connection')"), "cannot verify the schema's size and tables"),
        (FakeDb(size=None), "cannot verify the size of todobox"),
        (FakeDb(tables=()), "cannot verify what the dump must hold"),
    ],
)
def test_an_unknown_schema_size_fails_closed(db: FakeDb, expect: str) -> None:
    session = FakeSession(happy(), db=db)
    outcome, _, _ = run(session)
    assert outcome.status is PhaseStatus.FAILED and expect in outcome.summary
    assert session.launched == []


@pytest.mark.parametrize("answer", [Answer(1, ["df: /srv/backups: No such file"]), Answer(0, ["garbage"])])
def test_an_unknown_free_space_fails_closed(answer: Answer) -> None:
    session = FakeSession(happy(mkdir=answer))
    outcome, _, _ = run(session)
    assert outcome.status is PhaseStatus.FAILED and "cannot verify the free space" in outcome.summary
    assert session.launched == []


def test_an_unusable_backup_directory_is_named() -> None:
    session = FakeSession(happy(mkdir=Answer(6, [])))
    outcome, _, _ = run(session)
    assert outcome.status is PhaseStatus.FAILED
    assert outcome.summary == "the backup directory /srv/backups is not writable on the host"


def test_a_resumed_deploy_whose_dump_finished_verifies_it_without_dumping() -> None:
    run_id = "backup-20250101T000000Z-0a1b2c3d"
    conn = FakeConnection(states={run_id: ("finished", 0, 10)})
    session = FakeSession(happy(), connection=conn)
    outcome, call, _ = run(session, DeployContext(backup_run=run_id))
    assert outcome.status is PhaseStatus.OK and session.launched == [] and conn.attached == []
    assert call.context.backup is not None and call.context.backup_run is None
    assert outcome.fact("run id") == run_id


def test_no_dump_program_on_the_host() -> None:
    session = FakeSession(happy(mkdir=prepared(10 * 2**30, programs=())))
    outcome, _, _ = run(session)
    assert outcome.status is PhaseStatus.FAILED and "mysqldump not found" in outcome.summary


def test_a_verified_backup_is_recorded_and_old_ones_pruned() -> None:
    listing = [
        "todobox-20250101T000000Z.sql.gz",
        "todobox-20250102T000000Z.sql.gz",
        "todobox-20250103T000000Z.sql",
        "notes.sql.gz",
        "other-20240101T000000Z.sql.gz",
        "todobox-20240101T000000Z.sql.gz.part",
    ]
    session = FakeSession(happy(**{"read back": read_back(files=listing)}))
    outcome, call, seen = run(session)
    assert outcome.status is PhaseStatus.OK, outcome.summary
    run_id, script, stdin = session.launched[0]
    assert run_id.startswith("backup-") and bc.stamp_of_run(run_id)
    assert stdin is not None and b"password=" in stdin and "s3cret" not in script  # only over stdin
    assert "--defaults-extra-file=/dev/stdin --single-transaction" in script
    record = call.context.backup
    assert record is not None and record.verified and record.sha256 == SHA and record.size == 1234
    assert record.tables == ("alembic_version", "user") and call.context.backup_run is None
    assert record.path == f"/srv/backups/todobox-{bc.stamp_of_run(run_id)}.sql.gz"
    # keep = 2: the new one and the newest older one stay; foreign names are never touched
    deleted = outcome.fact("pruned")
    assert deleted == "todobox-20250102T000000Z.sql.gz, todobox-20250101T000000Z.sql.gz"
    rm = [s for s in session.scripts if s.startswith("rm -f")]
    assert rm == [
        "rm -f -- /srv/backups/todobox-20250102T000000Z.sql.gz /srv/backups/todobox-20250101T000000Z.sql.gz"
    ]
    assert outcome.summary.startswith(f"backup verified: {record.path} (")
    assert "trailer (-- Dump completed" in (outcome.fact("checks passed") or "")
    assert (
        outcome.fact(
            "dump program",
        )
        == f"/usr/bin/mariadb-dump ({MARIADB_DUMP})"
    )
    assert any("pruned (keep 2)" in line for line in seen)


@pytest.mark.parametrize(
    ("answer", "check"),
    [
        (read_back(last="INSERT INTO `user` VALUES (1,'a')"), "trailer:"),
        (read_back(tables=("alembic_version",)), "tables: no CREATE TABLE for user"),
        (read_back(size=0), "non-empty:"),
        (Answer(1, []), "exists:"),
        (Answer(0, ["Z 10", "S 1 0"]), "gzip integrity: gzip -d exited 1"),
        (Answer(0, [line for line in read_back().out if not line.startswith("H")]), "sha256:"),
    ],
)
def test_a_failed_check_is_named_and_never_recorded(answer: Answer, check: str) -> None:
    session = FakeSession(happy(**{"read back": answer}))
    outcome, call, _ = run(session)
    assert outcome.status is PhaseStatus.FAILED
    assert f"backup check failed: {check}" in outcome.summary
    assert call.context.backup is None and call.context.backup_run is None
    assert any(s.startswith("mv -T --") and s.endswith(".sql.gz.unverified") for s in session.scripts)
    assert not any(s.startswith("rm") for s in session.scripts)  # nothing pruned after a bad backup


def test_a_failed_stage_is_named_and_nothing_is_recorded() -> None:
    session = FakeSession(happy(), detached_rc=bc.COMPRESS_FAILED)
    outcome, call, _ = run(session)
    assert outcome.status is PhaseStatus.FAILED
    assert (
        "the compressor stage (gzip) failed" in outcome.summary
        and "no backup file was kept" in outcome.summary
    )
    assert "(last output: gzip: stdout: No space left on device)" in outcome.summary
    assert call.context.backup is None and call.context.backup_run is None
    assert not any("read back" in r for r in session.ran)


def test_already_made_is_shown_again_not_dumped_again() -> None:
    record = BackupRecord(
        "/srv/backups/todobox-20250101T000000Z.sql.gz", 1234, SHA, True, "2025-01-01T00:00:00Z"
    )
    session = FakeSession(happy())
    outcome, _, _ = run(session, DeployContext(backup=record))
    assert outcome.status is PhaseStatus.OK and outcome.summary.startswith("already made")
    assert session.launched == [] and outcome.fact("sha256") == SHA

    changed = FakeSession(happy(**{"stat+sha256sum": Answer(0, ["1234", f"{'cd' * 32}  /x"])}))
    outcome, _, _ = run(changed, DeployContext(backup=record))
    assert outcome.status is PhaseStatus.FAILED and "missing or changed" in outcome.summary
    assert changed.launched == []


def test_a_resumed_deploy_reattaches_to_its_running_dump() -> None:
    run_id = "backup-20250101T000000Z-0a1b2c3d"
    conn = FakeConnection(states={run_id: ("running", None, 10)})
    session = FakeSession(happy(), connection=conn)
    outcome, call, seen = run(session, DeployContext(backup_run=run_id))
    assert conn.attached == [run_id] and session.launched == []  # never a second dump
    assert outcome.status is PhaseStatus.OK
    assert call.context.backup is not None
    assert call.context.backup.path == "/srv/backups/todobox-20250101T000000Z.sql.gz"
    assert any("re-attaching" in line for line in seen)


def test_a_resumed_deploy_whose_dump_failed_makes_a_new_one() -> None:
    run_id = "backup-20250101T000000Z-0a1b2c3d"
    conn = FakeConnection(states={run_id: ("finished", 2, 10)})
    session = FakeSession(happy(), connection=conn)
    outcome, call, _ = run(session, DeployContext(backup_run=run_id))
    assert outcome.status is PhaseStatus.OK
    assert len(session.launched) == 1 and session.launched[0][0] != run_id
    assert call.context.backup is not None and call.context.backup_run is None


def test_a_resumed_deploy_whose_dump_vanished_asks_a_person_first_then_dumps_anew() -> None:
    run_id = "backup-20250101T000000Z-0a1b2c3d"
    conn = FakeConnection(states={run_id: ("unknown", None, None)})
    session = FakeSession(happy(), connection=conn)
    outcome, call, _ = run(session, DeployContext(backup_run=run_id))
    assert outcome.status is PhaseStatus.FAILED and "left no exit code" in outcome.summary
    assert "todobox-20250101T000000Z.sql.gz.part" in outcome.summary
    assert session.launched == [] and call.context.backup_run is None  # the next run makes a new one
    outcome, _, _ = run(session, call.context)
    assert outcome.status is PhaseStatus.OK and len(session.launched) == 1


# -- pure parts -------------------------------------------------------------------------------


def test_prune_selection_never_takes_the_new_file_or_foreign_files() -> None:
    new = "todobox-20250105T000000Z.sql.gz"
    names = [
        new,
        "todobox-20250104T000000Z.sql.gz",
        "todobox-20250103T000000Z.sql",
        "todobox-20990101T000000Z.sql.gz",  # from the future: newer than the new one by name
        "notes.sql.gz",
        "todobox_old-20200101T000000Z.sql.gz",
        "xtodobox-20200101T000000Z.sql.gz",
        "todobox-20200101T000000Z.sql.gz.part",
        "todobox-20200101T000000Z.sql.gz.unverified",
        "todobox-2020.sql.gz",
    ]
    assert bc.prune_selection(names, "todobox", new, 1) == [
        "todobox-20990101T000000Z.sql.gz",
        "todobox-20250104T000000Z.sql.gz",
        "todobox-20250103T000000Z.sql",
    ]
    assert bc.prune_selection(names, "todobox", new, 3) == ["todobox-20250103T000000Z.sql"]
    assert bc.prune_selection(names, "todobox", new, 10) == []
    assert bc.prune_selection([new], "todobox", new, 1) == []
    assert bc.prune_selection(["a.b-20250101T000000Z.sql", "axb-20250101T000000Z.sql"], "a.b", "n", 1) == [
        "a.b-20250101T000000Z.sql"
    ]


def test_trailer_and_tables() -> None:
    assert bc.trailer_ok("-- Dump completed on 2026-01-01 12:00:00")
    assert bc.trailer_ok("-- Dump completed")
    assert not bc.trailer_ok("INSERT INTO `user` VALUES (1);")
    assert not bc.trailer_ok("")
    assert not bc.trailer_ok(None)
    back = bc.parse_verify(
        ["Z 12", "T CREATE TABLE `a``b` (", "T CREATE TABLE `user` (", "L x", "S 0 0", "Z 99"]
    )
    assert back.size == 12 and back.tables == ("a`b", "user") and back.sha256 is None
    assert bc.missing_tables(["user", "alembic_version"], back.tables) == ["alembic_version"]


def test_parse_df() -> None:
    assert bc.parse_df(["created /x (mode 0700)", DF[0], DF[1].format(free=4096), "P\tx\t/x\tv"]) == 4096
    assert bc.parse_df([DF[0]]) is None
    assert bc.parse_df(["Filesystem", "/dev/vda 1 2 lots 1% /"]) is None
    assert bc.parse_df([]) is None


def test_space_needed() -> None:
    assert bc.space_needed(100, "gzip") == 100 + bc.SPACE_MARGIN
    assert bc.space_needed(100, "none") == 200 + bc.SPACE_MARGIN


def test_choose_client() -> None:
    maria = bc.DumpClient("mariadb-dump", "/usr/bin/mariadb-dump", MARIADB_DUMP)
    maria_alias = bc.DumpClient(
        "mysqldump", "/usr/bin/mysqldump", MARIADB_DUMP.replace("mariadb-dump", "mysqldump")
    )
    mysql = bc.DumpClient("mysqldump", "/usr/bin/mysqldump", MYSQL8_DUMP)
    both = {"mariadb-dump": maria, "mysqldump": maria_alias}
    assert bc.choose_client("mysqldump", both, server_is_mariadb=True) is maria
    assert bc.choose_client("mysqldump", both, server_is_mariadb=False) is maria  # the alias is MariaDB's
    assert bc.choose_client("mysqldump", {"mysqldump": mysql, "mariadb-dump": maria}, False) is mysql
    assert bc.choose_client("mysqldump", {"mysqldump": mysql}, True) is mysql
    assert bc.choose_client("mysqldump", {}, True) is None
    assert bc.choose_client("/opt/bin/dump", both, True) is None
    assert mysql.major == 8 and maria.major == 10 and maria.is_mariadb and not mysql.is_mariadb


def test_dump_flags_by_client_and_server() -> None:
    maria = bc.DumpClient("mariadb-dump", "/usr/bin/mariadb-dump", MARIADB_DUMP)
    mysql = bc.DumpClient("mysqldump", "/usr/bin/mysqldump", MYSQL8_DUMP)
    flags = bc.dump_flags(DB, maria, server_is_mariadb=True, gtid_mode=None)
    for flag in ("--single-transaction", "--quick", "--routines", "--triggers", "--events", "--hex-blob"):
        assert flag in flags
    assert "--no-tablespaces" in flags and "--user=todobox" in flags and "--port=3306" in flags
    assert not any("gtid" in f or "column-statistics" in f for f in flags)
    assert not any("gtid" in f for f in bc.dump_flags(DB, maria, server_is_mariadb=False, gtid_mode="ON"))
    assert "--set-gtid-purged=OFF" in bc.dump_flags(DB, mysql, server_is_mariadb=False, gtid_mode="ON")
    assert "--set-gtid-purged=OFF" not in bc.dump_flags(DB, mysql, server_is_mariadb=False, gtid_mode="OFF")
    assert "--column-statistics=0" in bc.dump_flags(DB, mysql, server_is_mariadb=True, gtid_mode=None)
    argv, stdin = mysql_command(replace(DB, dump=maria.path), "pw", flags, tool="dump")
    assert argv[:3] == ["/usr/bin/mariadb-dump", "--defaults-extra-file=/dev/stdin", "--single-transaction"]
    assert argv[-1] == "todobox" and b'password="pw"' in stdin


def test_names_and_run_ids() -> None:
    assert bc.backup_name("todobox", "20250101T000000Z", "gzip") == "todobox-20250101T000000Z.sql.gz"
    assert bc.backup_name("todobox", "20250101T000000Z", "none") == "todobox-20250101T000000Z.sql"
    for bad in ("a/b", "..", "-x", ""):
        with pytest.raises(ValueError):
            bc.backup_name(bad, "20250101T000000Z", "gzip")
    assert bc.stamp_of_run(bc.run_id_of("20250101T000000Z", "ab12")) == "20250101T000000Z"
    assert bc.stamp_of_run("migrate-20250101T000000Z-ab12") is None
    assert bc.created_at_of("20250101T093000Z") == "2025-01-01T09:30:00Z"
    assert bc.human_bytes(512) == "512 B" and bc.human_bytes(12_897_484) == "12.3 MiB"


# -- the shell parts, run by a local bash ------------------------------------------------------


def _fake_dump(tmp_path: Path, body: str) -> str:
    path = tmp_path / "fake-dump"
    path.write_text("#!/bin/bash\n" + body + "\n")
    path.chmod(0o755)
    return str(path)


MARK = "__todobox_check_test"
SQL = "CREATE TABLE `alembic_version` (\n  x int\n);\nCREATE TABLE `user` (\n  y int\n);\n" + TRAILER + "\n"


def _dump_script(
    tmp_path: Path, body: str, directory: Path, compression: Compression = "gzip"
) -> tuple[str, Path]:
    final = directory / "todobox-20250101T000000Z.sql.gz"
    argv = [_fake_dump(tmp_path, body), "--defaults-extra-file=/dev/stdin", "todobox"]
    return bc.dump_script(argv, compression, str(final), MARK), final


def _bash(script: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, input="[client]\n", **kw)


def test_dump_script_writes_a_private_file_via_a_part(tmp_path: Path) -> None:
    script, final = _dump_script(tmp_path, f"cat > /dev/null; cat <<'EOF'\n{SQL}EOF", tmp_path)
    done = _bash(script)
    assert done.returncode == 0, done.stderr
    assert gzip.decompress(final.read_bytes()).decode() == SQL
    assert final.stat().st_mode & 0o777 == 0o600
    assert not Path(str(final) + ".part").exists()
    assert "stage exit statuses: fake-dump 0, gzip 0, tee to the checks 0 0" in done.stdout
    # checked as written: the same answers as reading the file back, and the written stream's hash
    checked = bc.checked_lines(done.stdout.splitlines(), MARK)
    back = bc.parse_verify(checked)
    import hashlib

    sha = hashlib.sha256(final.read_bytes()).hexdigest()
    assert back.size == final.stat().st_size and back.tables == ("alembic_version", "user")
    assert (back.decompress_status, back.scan_status) == (0, 0) and bc.trailer_ok(back.last_line)
    assert back.sha256 == sha and f"W {sha}  -" in checked and final.name in back.files
    # the same file again is refused: nothing is overwritten
    again = _bash(script)
    assert again.returncode == bc.TARGET_EXISTS and gzip.decompress(final.read_bytes()).decode() == SQL


def test_dump_script_read_back_by_the_verify_script(tmp_path: Path) -> None:
    script, final = _dump_script(tmp_path, f"cat > /dev/null; cat <<'EOF'\n{SQL}EOF", tmp_path)
    assert _bash(script).returncode == 0
    (tmp_path / "x\ntodobox-20990101T000000Z.sql.gz").write_text("a name that spans two lines")
    (tmp_path / "link-20200101T000000Z.sql.gz").symlink_to(final)
    back = bc.parse_verify(_bash(bc.verify_script(str(final), "gzip")).stdout.splitlines())
    assert back.size == final.stat().st_size and back.tables == ("alembic_version", "user")
    assert final.name in back.files and "fake-dump" in back.files
    assert "link-20200101T000000Z.sql.gz" not in back.files  # symlinks are never pruned
    assert "$'x\\ntodobox-20990101T000000Z.sql.gz'" in back.files  # quoted: it never matches a backup name
    assert bc.prune_selection(back.files, "todobox", final.name, 1) == []
    assert bc.trailer_ok(back.last_line) and (back.decompress_status, back.scan_status) == (0, 0)
    import hashlib

    assert back.sha256 == hashlib.sha256(final.read_bytes()).hexdigest()
    # cut short: gzip -d fails and the trailer is gone
    cut = tmp_path / "cut.sql.gz"
    cut.write_bytes(final.read_bytes()[:-12])
    back = bc.parse_verify(_bash(bc.verify_script(str(cut), "gzip")).stdout.splitlines())
    assert back.decompress_status not in (0, None)
    plain = tmp_path / "plain.sql"
    plain.write_text(SQL.replace(TRAILER + "\n", ""))
    back = bc.parse_verify(_bash(bc.verify_script(str(plain), "none")).stdout.splitlines())
    assert back.decompress_status == 0 and not bc.trailer_ok(back.last_line)


@pytest.mark.parametrize(
    ("body", "rc"),
    [
        ("cat > /dev/null; echo 'Got error: 1045' >&2; exit 2", bc.DUMP_FAILED),
        ("cat > /dev/null; exit 0", bc.COMPRESS_FAILED),
    ],
)
def test_dump_script_names_the_failed_stage_and_leaves_nothing(tmp_path: Path, body: str, rc: int) -> None:
    directory = tmp_path / "out"
    directory.mkdir()
    # for the compressor's failure the file's directory is missing: its output cannot be opened
    script, _ = _dump_script(tmp_path, body, directory / "missing" if rc == bc.COMPRESS_FAILED else directory)
    done = _bash(script)
    assert done.returncode == rc, done.stderr
    assert list(directory.iterdir()) == []
    assert "failed" in bc.describe_failure(rc, "mariadb-dump", "gzip")


def test_dump_script_interrupted_removes_the_part(tmp_path: Path) -> None:
    script, final = _dump_script(tmp_path, "cat > /dev/null; echo partial; exec sleep 30", tmp_path)
    proc = subprocess.Popen(
        ["bash", "-c", script],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    part = Path(str(final) + ".part")
    _wait_for(lambda: part.exists())
    os.killpg(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=10) == bc.INTERRUPTED
    assert not part.exists() and not final.exists()


def _wait_for(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_prepare_script_creates_a_private_directory(tmp_path: Path) -> None:
    target = tmp_path / "a" / "backups"
    done = _bash(bc.prepare_script(str(target), ["bash", "no-such-dump-program"]))
    assert done.returncode == 0, done.stderr
    assert target.stat().st_mode & 0o777 == 0o700
    lines = done.stdout.splitlines()
    assert lines[0] == f"created {target} (mode 0700)"
    assert bc.parse_df(lines) is not None and bc.parse_df(lines) > 0  # type: ignore[operator]
    found = bc.parse_detected(lines)
    assert list(found) == ["bash"] and "GNU bash" in found["bash"].version
    (tmp_path / "file").write_text("x")
    assert _bash(bc.prepare_script(str(tmp_path / "file"), [])).returncode == 3


def test_a_checker_that_dies_fails_the_checks_not_the_dump(tmp_path: Path) -> None:
    """awk missing on the host: the file is still written whole (tee -p), but the scan's status says the
    check did not run, so the phase never records it as verified."""
    script, final = _dump_script(tmp_path, f"cat > /dev/null; cat <<'EOF'\n{SQL}EOF", tmp_path)
    done = _bash(script.replace("LC_ALL=C awk ", "LC_ALL=C no-such-awk "))
    assert done.returncode == 0, done.stderr
    back = bc.parse_verify(bc.checked_lines(done.stdout.splitlines(), MARK))
    assert back.scan_status not in (0, None) and back.tables == ()
    assert gzip.decompress(final.read_bytes()).decode() == SQL


def test_no_sql_on_the_none_compression_path_is_lost(tmp_path: Path) -> None:
    script, final = _dump_script(tmp_path, f"cat > /dev/null; cat <<'EOF'\n{SQL}EOF", tmp_path, "none")
    done = _bash(script)
    assert done.returncode == 0, done.stderr
    back = bc.parse_verify(bc.checked_lines(done.stdout.splitlines(), MARK))
    assert final.read_text() == SQL and back.tables == ("alembic_version", "user")
    assert (back.decompress_status, back.scan_status) == (0, 0) and bc.trailer_ok(back.last_line)


def test_checked_as_written_fails_when_the_file_on_disk_differs_from_the_stream() -> None:
    from todobox_deploy.engine.phases.backup import _judge

    disk, stream = "a" * 64, "b" * 64
    lines = ["Z 10", "T CREATE TABLE `user` (", f"L {TRAILER} on today", "S 0 0", f"H {disk}  f.gz"]
    same = bc.parse_verify([*lines, f"W {disk}  -"])
    assert same.written_sha256 == disk
    assert _judge(same, "gzip", ["user"], [], as_written=True)[0] is None
    differs = bc.parse_verify([*lines, f"W {stream}  -"])
    problem, _ = _judge(differs, "gzip", ["user"], [], as_written=True)
    assert problem == "sha256: the file on disk differs from the bytes written"
    missing = bc.parse_verify(lines)  # no W line: the stream's hash is unknown, never assumed equal
    assert _judge(missing, "gzip", ["user"], [], as_written=True)[0] is not None
    assert _judge(missing, "gzip", ["user"], [], as_written=False)[0] is None  # a read-back has no stream
