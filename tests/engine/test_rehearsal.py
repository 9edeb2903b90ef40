"""The rehearsal on a scratch copy: pure decisions (grants, DDL effects, schema check, the host scripts run
by a local bash) and the real phase on the sandbox, after a real backup and a real pre-flight."""

from __future__ import annotations

import dataclasses
import gzip
import os
import re
import secrets
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest
from run_helpers import Poller, proc_files

from todobox_deploy.config import DeployConfig, ExpectedSchema, load_config
from todobox_deploy.core.context import BackupRecord, DeployContext
from todobox_deploy.core.envfile import password_in_env_text
from todobox_deploy.core.outcome import PhaseOutcome, PhaseStatus
from todobox_deploy.core.streams import Stream
from todobox_deploy.db.live import LiveTables
from todobox_deploy.engine.phases.backup import backup
from todobox_deploy.engine.phases.preflight import preflight
from todobox_deploy.engine.phases.rehearsal import (
    CLIENT_FAILED,
    READER_FAILED,
    ddl_effects,
    extract_script,
    grant_statement,
    is_additive,
    missing_grant_message,
    missing_privileges,
    rehearsal,
    repo_relative,
    restore_script,
    schema_check,
    scratch_name,
    scratch_pattern,
)
from todobox_deploy.engine.phases.spec import PhaseCall
from todobox_deploy.engine.session import DeploySession
from todobox_deploy.remote.connection import SshConnection
from todobox_deploy.sandbox import appdb
from todobox_deploy.sandbox.manager import SandboxInfo

# -- grants --------------------------------------------------------------------------------------------

SCRATCH = "todobox_rehearsal_0a1b2c"


def test_app_grants_on_its_own_schema_do_not_cover_the_scratch_schema() -> None:
    lines = [
        "GRANT USAGE ON *.* TO `todobox`@`localhost` IDENTIFIED BY PASSWORD '*ABC'",
        "GRANT ALL PRIVILEGES ON `todobox`.* TO `todobox`@`localhost`",
    ]
    assert missing_privileges(lines, SCRATCH)[:3] == ["SELECT", "INSERT", "UPDATE"]
    assert "CREATE" in missing_privileges(lines, SCRATCH)


@pytest.mark.parametrize(
    "line",
    [
        "GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION",
        "GRANT ALL PRIVILEGES ON `todobox\\_rehearsal\\_%`.* TO `todobox`@`%`",
        "GRANT ALL ON `todobox\\_%`.* TO `todobox`@`%`",
        "GRANT ALL PRIVILEGES ON `%`.* TO `ops`@`%`",
        "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, INDEX, REFERENCES, LOCK TABLES "
        "ON `todobox_rehearsal_%`.* TO `x`@`%`",
    ],
)
def test_grants_that_cover_the_scratch_schema(line: str) -> None:
    assert missing_privileges([line], SCRATCH) == []


@pytest.mark.parametrize(
    "line",
    [
        "GRANT ALL PRIVILEGES ON `other\\_%`.* TO `todobox`@`%`",
        "GRANT ALL PRIVILEGES ON `todobox\\_rehearsal`.* TO `todobox`@`%`",  # no wildcard: another name
        "GRANT ALL PRIVILEGES ON `todobox_rehearsal_0a1b2c`.`user` TO `todobox`@`%`",  # table-level
        "GRANT `dba_role` TO `todobox`@`%`",  # a role: cannot verify what it gives
    ],
)
def test_grants_that_do_not_cover_it(line: str) -> None:
    assert missing_privileges([line], SCRATCH) != []


def test_privileges_add_up_across_global_and_database_grants() -> None:
    lines = [
        "GRANT SELECT, CREATE, DROP ON *.* TO `x`@`%`",
        "GRANT INSERT, UPDATE, DELETE, ALTER ON `todobox\\_rehearsal\\_%`.* TO `x`@`%`",
    ]
    assert missing_privileges(lines, SCRATCH) == ["INDEX", "REFERENCES", "LOCK TABLES"]


def test_the_missing_grant_is_named_exactly() -> None:
    assert scratch_pattern("todobox") == "todobox\\_rehearsal\\_%"
    assert (
        grant_statement("todobox", "todobox@localhost")
        == "GRANT ALL PRIVILEGES ON `todobox\\_rehearsal\\_%`.* TO 'todobox'@'localhost'"
    )
    assert grant_statement("my_app%", "o'neil@%") == (
        "GRANT ALL PRIVILEGES ON `my\\_app\\%\\_rehearsal\\_%`.* TO 'o\\'neil'@'%'"
    )
    message = missing_grant_message("todobox", "todobox@127.0.0.1", ["CREATE", "DROP"], admin_hint="or X")
    assert "'todobox'@'127.0.0.1' lacks CREATE, DROP" in message
    assert "GRANT ALL PRIVILEGES ON `todobox\\_rehearsal\\_%`.* TO 'todobox'@'127.0.0.1'; or X" in message


def test_scratch_names_fit_in_64_characters() -> None:
    assert scratch_name("todobox", "0a1b2c") == SCRATCH
    long = scratch_name("d" * 64, "abcdef")
    assert len(long) == 64 and long.endswith("_rehearsal_abcdef")
    with pytest.raises(ValueError):
        scratch_name("todobox", "XYZ")


# -- DDL effects and the resulting schema --------------------------------------------------------------

BASE_COLUMNS = {"id": "int(11)", "username": "varchar(64)", "password_hash": "varchar(255)"}
BASE_INDEXES = {"primary": (("id",), True), "ix_user_username": (("username",), True)}


def _tables(
    columns: dict[str, str] | None = None,
    indexes: dict[str, tuple[tuple[str, ...], bool]] | None = None,
    alembic: tuple[str, ...] | None = ("c682ef478e45",),
    extra: dict[str, dict[str, str]] | None = None,
) -> LiveTables:
    cols = {
        "user": dict(BASE_COLUMNS if columns is None else columns),
        "alembic_version": {"version_num": "v"},
    }
    cols.update(extra or {})
    return LiveTables(cols, {"user": dict(BASE_INDEXES if indexes is None else indexes)}, alembic)


def test_the_fix_is_additive() -> None:
    after = _tables(
        {**BASE_COLUMNS, "api_token": "varchar(64)"},
        {**BASE_INDEXES, "ix_user_api_token": (("api_token",), True)},
        ("d1f2e3c4b5a6",),
    )
    effects = ddl_effects(_tables(), after)
    assert [e.describe() for e in effects] == [
        "user: column api_token added (varchar(64))",
        "user: index ix_user_api_token added (unique on (api_token))",
    ]
    assert is_additive(effects)


def test_a_new_table_is_additive_and_no_change_is_too() -> None:
    effects = ddl_effects(_tables(), _tables(extra={"token": {"id": "int(11)"}}))
    assert [(e.kind, e.table) for e in effects] == [("table added", "token")]
    assert is_additive(effects)
    assert ddl_effects(_tables(), _tables()) == [] and is_additive([])


@pytest.mark.parametrize(
    ("after", "kind"),
    [
        (_tables({"id": "int(11)", "username": "varchar(64)"}), "column dropped"),
        (_tables({**BASE_COLUMNS, "password_hash": "varchar(128)"}), "column changed"),
        (_tables(indexes={"primary": (("id",), True)}), "index dropped"),
        (_tables(indexes={**BASE_INDEXES, "ix_user_username": (("username",), False)}), "index changed"),
    ],
)
def test_drops_and_changes_are_not_additive(after: LiveTables, kind: str) -> None:
    effects = ddl_effects(_tables(), after)
    assert [e.kind for e in effects] == [kind]
    assert not is_additive(effects)


def test_a_dropped_table_is_not_additive() -> None:
    before = _tables(extra={"old": {"id": "int(11)"}})
    effects = ddl_effects(before, _tables())
    assert [e.describe() for e in effects] == ["old dropped"]
    assert not is_additive(effects)


EXPECTED = (ExpectedSchema("user", "api_token", "varchar(64)", "ix_user_api_token", True),)


def test_schema_check_passes_the_fixed_schema() -> None:
    live = _tables(
        {**BASE_COLUMNS, "api_token": "varchar(64)"},
        {**BASE_INDEXES, "ix_user_api_token": (("api_token",), True)},
        ("d1f2e3c4b5a6",),
    )
    facts, problems = schema_check(live, EXPECTED, "d1f2e3c4b5a6")
    assert problems == []
    assert dict(facts) == {
        "copy: user.api_token": "varchar(64)",
        "copy: index ix_user_api_token": "unique on (api_token)",
        "copy: alembic_version": "d1f2e3c4b5a6",
    }


def test_schema_check_names_each_shortfall() -> None:
    live = _tables(
        {**BASE_COLUMNS, "api_token": "varchar(32)"},
        {**BASE_INDEXES, "ix_user_api_token": (("api_token",), False)},
    )
    _, problems = schema_check(live, EXPECTED, "d1f2e3c4b5a6")
    assert problems == [
        "user.api_token is varchar(32), expected varchar(64)",
        "index ix_user_api_token is on (api_token), expected unique on (api_token)",
        "alembic_version is c682ef478e45, expected d1f2e3c4b5a6",
    ]
    _, problems = schema_check(_tables(alembic=None), EXPECTED, "d1f2e3c4b5a6")
    assert problems == [
        "user.api_token missing",
        "index ix_user_api_token missing",
        "alembic_version is empty, expected d1f2e3c4b5a6",
    ]


# -- the host scripts, run by a local bash ----------------------------------------------------------------

FAKE_CLIENT = """#!/bin/bash
# a stand-in for mysql: the option file must be the first option and readable; SQL comes on stdin
case "$1" in --defaults-extra-file=*) ;; *) echo "option file not first" >&2; exit 7;; esac
grep -q '^password=' "${1#--defaults-extra-file=}" || { echo "no option file" >&2; exit 9; }
cat > "$OUT"
exit "${CLIENT_RC:-0}"
"""


def _run_restore(tmp_path: Path, dump: Path, client_rc: int = 0) -> tuple[int, str, str]:
    client = tmp_path / "fake-mysql"
    client.write_text(FAKE_CLIENT)
    client.chmod(0o755)
    env = {**os.environ, "OUT": str(tmp_path / "restored.sql"), "CLIENT_RC": str(client_rc)}
    script = restore_script(str(client), SCRATCH, str(dump))
    proc = subprocess.run(
        ["bash", "-o", "pipefail", "-c", script],
        input=b'[client]\nuser="u"\npassword="secret"\n',
        capture_output=True,
        env=env,
        timeout=30,
    )
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode()


def test_restore_script_pipes_the_dump_and_reads_the_option_file_on_fd3(tmp_path: Path) -> None:
    dump = tmp_path / "todobox.sql.gz"
    dump.write_bytes(gzip.compress(b"CREATE TABLE t (id int);\n-- Dump completed\n"))
    rc, out, _ = _run_restore(tmp_path, dump)
    assert rc == 0, out
    assert (tmp_path / "restored.sql").read_text().endswith("-- Dump completed\n")
    assert "stage exit statuses: gzip 0, fake-mysql 0" in out
    plain = tmp_path / "todobox.sql"
    plain.write_text("SELECT 1;\n")
    rc, out, _ = _run_restore(tmp_path, plain)
    assert rc == 0 and "stage exit statuses: cat 0" in out
    assert (tmp_path / "restored.sql").read_text() == "SELECT 1;\n"


def test_restore_script_names_the_failed_stage(tmp_path: Path) -> None:
    broken = tmp_path / "broken.sql.gz"
    broken.write_bytes(gzip.compress(b"x" * 1000)[:-12])  # truncated: the reader fails, the client exits 0
    assert _run_restore(tmp_path, broken)[0] == READER_FAILED
    good = tmp_path / "good.sql.gz"
    good.write_bytes(gzip.compress(b"SELECT 1;\n"))
    assert _run_restore(tmp_path, good, client_rc=1)[0] == CLIENT_FAILED
    assert _run_restore(tmp_path, tmp_path / "missing.sql.gz")[0] == READER_FAILED


def test_extract_script_and_paths(tmp_path: Path) -> None:
    repo = tmp_path / "app"
    (repo / "migrations" / "versions").mkdir(parents=True)
    (repo / "migrations" / "versions" / "a.py").write_text("revision = 'a'\n")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "m"], check=True)
    into = tmp_path / "out"
    into.mkdir()
    script = extract_script(str(repo), "HEAD", "migrations", str(into))
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert (into / "migrations" / "versions" / "a.py").read_text() == "revision = 'a'\n"
    bad = extract_script(str(repo), "HEAD", "nowhere", str(tmp_path / "out"))
    assert subprocess.run(["bash", "-c", bad], capture_output=True, timeout=30).returncode != 0
    assert repo_relative("/srv/app", "migrations") == "migrations"
    assert repo_relative("/srv/app", "/srv/app/db/migrations") == "db/migrations"
    assert repo_relative("/srv/app", "/opt/migrations") is None


def test_without_a_verified_backup_nothing_is_touched() -> None:
    no_session = object()  # never used: the phase stops before touching the session
    call = PhaseCall(no_session, lambda s, ls: None, threading.Event(), DeployContext())  # type: ignore[arg-type]
    assert rehearsal(call).status is PhaseStatus.FAILED
    ctx = DeployContext(
        backup=BackupRecord("/b/x.sql.gz", 1, "0" * 64, True), commit_target="c" * 40, migration_plan=()
    )
    call = PhaseCall(no_session, lambda s, ls: None, threading.Event(), ctx)  # type: ignore[arg-type]
    assert rehearsal(call).status is PhaseStatus.SKIPPED


# -- the real sandbox ---------------------------------------------------------------------------------------

ADMIN = "rehearse"


def _app_password(config: DeployConfig) -> str:
    password = password_in_env_text(Path(config.app.env_file or "").read_text(), "DATABASE_URL")
    assert password
    return password


def _root(info: SandboxInfo) -> pymysql.connections.Connection:
    return pymysql.connect(unix_socket=str(info.db_socket), user="root", autocommit=True)


def _scratch_schemas(info: SandboxInfo) -> list[str]:
    with _root(info) as conn, conn.cursor() as cur:
        cur.execute("SHOW DATABASES LIKE 'todobox\\_rehearsal\\_%'")
        return [r[0] for r in cur.fetchall()]


class _Run:
    """A session with the context of a real backup and a real pre-flight, ready for the rehearsal."""

    def __init__(self, config: DeployConfig, pins: Path, environ: dict[str, str]) -> None:
        self.session = DeploySession(
            config,
            connection_factory=lambda: SshConnection(config.target, pinned_known_hosts=pins),
            environ=environ,
        )
        self.seen: list[tuple[Stream, str]] = []
        self.call = PhaseCall(
            self.session,
            lambda s, ls: self.seen.extend((s, x) for x in ls),
            threading.Event(),
            DeployContext(),
        )

    def body(self, fn: object) -> PhaseOutcome:
        outcome: PhaseOutcome = fn(self.call)  # type: ignore[operator]
        return outcome


@pytest.fixture
def prepared(sandbox_reset: SandboxInfo, tmp_path: Path) -> Iterator[tuple[SandboxInfo, DeployConfig, Path]]:
    config = load_config(sandbox_reset.config)
    yield sandbox_reset, config, tmp_path / "pins"
    for left in _scratch_schemas(sandbox_reset):  # never leave a copy behind, even when a test failed
        with _root(sandbox_reset) as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{left}`")
    _scratch_grant(sandbox_reset, "GRANT", "TO")  # the sandbox's own state again (restoring keeps grants)


def _backup_and_preflight(run: _Run) -> None:
    made = run.body(backup)
    assert made.status is PhaseStatus.OK, made.summary
    checked = run.body(preflight)
    assert checked.status in (PhaseStatus.OK, PhaseStatus.WARNING), checked.summary
    assert run.call.context.migration_plan, "the bug state needs a migration"
    assert run.call.context.backup is not None and run.call.context.backup.verified


def _scratch_grant(info: SandboxInfo, verb: str, preposition: str) -> None:
    with _root(info) as conn, conn.cursor() as cur:
        for host in ("localhost", "127.0.0.1"):
            cur.execute(
                f"{verb} ALL PRIVILEGES ON `todobox\\_rehearsal\\_%`.* {preposition} 'todobox'@'{host}'"
            )


def _revoke_scratch_grant(info: SandboxInfo) -> None:
    """The sandbox lets its app user create rehearsal copies; these tests need an account that cannot
    (``prepared`` grants it again afterwards: the session's sandbox keeps grants across restores)."""
    _scratch_grant(info, "REVOKE", "FROM")


@pytest.mark.integration
@pytest.mark.timeout(240)
def test_without_privileges_or_an_admin_account_it_fails_naming_the_grant(
    prepared: tuple[SandboxInfo, DeployConfig, Path],
) -> None:
    info, config, pins = prepared
    _revoke_scratch_grant(info)
    run = _Run(config, pins, {})
    try:
        _backup_and_preflight(run)
        outcome = run.body(rehearsal)
    finally:
        run.session.close()
    assert outcome.status is PhaseStatus.FAILED
    assert re.search(
        r"missing grant: GRANT ALL PRIVILEGES ON `todobox\\_rehearsal\\_%`\.\* "
        r"TO 'todobox'@'(localhost|127\.0\.0\.1)'",
        outcome.summary,
    ), outcome.summary
    assert "admin_user" in outcome.summary
    assert run.call.context.rehearsal_seconds is None and run.call.context.migration_additive is None
    assert _scratch_schemas(info) == []


class _ProcWatch(Poller):
    """Scans every process's cmdline (and environ, where readable) for the secrets while a phase runs."""

    def __init__(self, secrets_: list[str]) -> None:
        super().__init__(0.02, "proc-watch")
        self.needles = [s.encode() for s in secrets_]
        self.hits: list[str] = []
        self.scans = 0

    def poll(self) -> None:
        for pid, what, data in proc_files():
            if any(n in data for n in self.needles):
                self.hits.append(f"{pid} {what}: {data[:200]!r}")
        self.scans += 1


@pytest.fixture
def admin_account(prepared: tuple[SandboxInfo, DeployConfig, Path]) -> Iterator[str]:
    info = prepared[0]
    password = "Rh-" + secrets.token_urlsafe(18)
    with _root(info) as conn, conn.cursor() as cur:
        cur.execute("CREATE OR REPLACE USER %s@'%%' IDENTIFIED BY %s", (ADMIN, password))
        cur.execute("GRANT ALL PRIVILEGES ON *.* TO %s@'%%'", (ADMIN,))
    try:
        yield password
    finally:
        with _root(info) as conn, conn.cursor() as cur:
            cur.execute("DROP USER IF EXISTS %s@'%%'", (ADMIN,))


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_with_an_admin_account_the_migration_is_rehearsed_on_a_copy_and_the_copy_dropped(
    prepared: tuple[SandboxInfo, DeployConfig, Path], admin_account: str
) -> None:
    info, config, pins = prepared
    _revoke_scratch_grant(info)
    config = dataclasses.replace(
        config,
        database=dataclasses.replace(config.database, admin_user=ADMIN, admin_password_env="TBX_REHEARSE_PW"),
    )
    run = _Run(config, pins, {"TBX_REHEARSE_PW": admin_account})
    app_password = _app_password(config)
    try:
        _backup_and_preflight(run)
        with _ProcWatch([admin_account, app_password]) as watch:
            outcome = run.body(rehearsal)
        commands = [c.command for c in run.session.commands]
    finally:
        run.session.close()
    facts = dict(outcome.facts)
    assert outcome.status is PhaseStatus.OK, (outcome.summary, outcome.facts)
    assert facts["account"].startswith(f"{ADMIN}@% ([database] admin_user;")
    scratch = facts["scratch schema"]
    assert re.fullmatch(r"todobox_rehearsal_[0-9a-f]{6}", scratch)
    assert facts["backup restored"].startswith(run.call.context.backup.path)  # type: ignore[union-attr]
    assert facts["checksum user"].startswith("equal: ")
    assert facts["steps"] == "stamp 366e5694a9ad, upgrade d1f2e3c4b5a6"
    assert "Running upgrade" in facts["Alembic ran"] and "d1f2e3c4b5a6" in facts["Alembic ran"]
    assert facts["app's own flask db"].startswith(("usable", "NOT usable"))
    assert "user: column api_token added (varchar(64))" in facts["DDL effects"]
    assert "user: index ix_user_api_token added (unique on (api_token))" in facts["DDL effects"]
    assert facts["additive"].startswith("yes")
    assert facts["copy: user.api_token"] == "varchar(64)"
    assert facts["copy: index ix_user_api_token"] == "unique on (api_token)"
    assert facts["copy: alembic_version"] == appdb.FIX_REVISION
    assert facts["resulting schema"] == "as expected"
    assert facts["scratch schema dropped"].startswith(f"yes: {scratch} no longer exists")
    assert facts["temp dir removed"].startswith("yes: ")
    assert run.call.context.migration_additive is True
    assert (run.call.context.rehearsal_seconds or 0) > 0
    # production untouched, the copy gone, the temp dir gone
    with _root(info) as conn, conn.cursor() as cur:
        cur.execute("SELECT version_num FROM todobox.alembic_version")
        assert [r[0] for r in cur.fetchall()] == [appdb.BUG_REVISION]
        cur.execute("SHOW COLUMNS FROM todobox.user LIKE 'api_token'")
        assert cur.fetchall() == ()
    assert _scratch_schemas(info) == []
    assert not list(Path(config.backup.directory).glob("todobox-rehearsal.*"))
    # no password anywhere: process table, output, facts, journaled commands
    assert watch.scans > 5 and watch.hits == []
    text = "\n".join(line for _, line in run.seen) + repr(outcome) + "\n".join(commands)
    for secret in (admin_account, app_password):
        assert secret not in text


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_written_production_warns_and_a_failed_or_cancelled_rehearsal_still_drops_its_copy(
    prepared: tuple[SandboxInfo, DeployConfig, Path], admin_account: str
) -> None:
    info, config, pins = prepared
    config = dataclasses.replace(
        config,
        database=dataclasses.replace(config.database, admin_user=ADMIN, admin_password_env="TBX_REHEARSE_PW"),
    )
    run = _Run(config, pins, {"TBX_REHEARSE_PW": admin_account})
    try:
        _backup_and_preflight(run)
        with _root(info) as conn, conn.cursor() as cur:  # production is written after the backup
            cur.execute("INSERT INTO todobox.user (username, email) VALUES ('late', 'late@example.com')")
        written = run.body(rehearsal)

        run.call.context = dataclasses.replace(run.call.context, rehearsal_seconds=None)
        run.call.context = dataclasses.replace(
            run.call.context, migration_plan=(("upgrade", "deadbeef0000"),)
        )
        failed = run.body(rehearsal)

        run.call.cancel.set()
        cancelled = run.body(rehearsal)
    finally:
        run.session.close()

    assert written.status is PhaseStatus.WARNING, written.summary
    checksum = written.fact("checksum user") or ""
    assert checksum.startswith("DIFFERENT: copy ") and "(2000 rows)" in checksum and "(2001 rows)" in checksum
    assert "production was written since the backup" in written.summary
    assert written.fact("resulting schema") == "as expected"

    assert failed.status is PhaseStatus.FAILED
    assert "the migration FAILED on the copy" in failed.summary and "deadbeef0000" in failed.summary
    assert run.call.context.rehearsal_seconds is None  # only a successful rehearsal is recorded
    assert (failed.fact("scratch schema dropped") or "").startswith("yes: ")
    assert (failed.fact("temp dir removed") or "").startswith("yes: ")

    assert cancelled.status is PhaseStatus.CANCELLED, cancelled.summary
    assert (cancelled.fact("scratch schema dropped") or "").startswith("yes: ")
    assert _scratch_schemas(info) == []
    assert not list(Path(config.backup.directory).glob("todobox-rehearsal.*"))


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_an_app_account_granted_the_scratch_pattern_needs_no_admin(
    prepared: tuple[SandboxInfo, DeployConfig, Path],
) -> None:
    info, config, pins = prepared
    _revoke_scratch_grant(info)
    with _root(info) as conn, conn.cursor() as cur:
        for host in ("localhost", "127.0.0.1"):  # what an administrator runs, as the FAILED message says
            cur.execute(f"GRANT ALL PRIVILEGES ON `todobox\\_rehearsal\\_%`.* TO 'todobox'@'{host}'")
        cur.execute("CREATE DATABASE todobox_rehearsal_ffffff")  # a copy an interrupted rehearsal left
    run = _Run(config, pins, {})
    try:
        _backup_and_preflight(run)
        outcome = run.body(rehearsal)
    finally:
        run.session.close()
    assert outcome.status is PhaseStatus.OK, outcome.summary
    assert (outcome.fact("account") or "").endswith("(the app's account)")
    assert outcome.fact("earlier scratch schemas") == (
        "todobox_rehearsal_ffffff (not touched: drop them by hand)"
    )
    assert outcome.fact("resulting schema") == "as expected"
    assert _scratch_schemas(info) == ["todobox_rehearsal_ffffff"]  # only the old one, left alone
