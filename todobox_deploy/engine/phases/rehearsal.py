"""Checklist step "Test migrations on a copy of the production database", before the app is stopped.

The verified backup is restored into a scratch schema ``<db>_rehearsal_<6 hex>`` on the same server, its
migrated tables are compared with production (``CHECKSUM TABLE``), the pre-flight's migration plan runs on
the copy with the target commit's migration files (standalone: the app is never imported), and what the
migration did is read back as DDL effects (additive or not) and against the schema the deploy must reach.
The scratch schema is always dropped at the end, and its absence verified.

The account that owns the scratch schema is the app's own when its grants cover the scratch name, else
``[database] admin_user``; passwords travel only over stdin (an option file on fd 3 for ``mysql``, one
line for the migration program) and are registered for redaction before any use.
"""

from __future__ import annotations

import contextlib
import dataclasses
import posixpath
import re
import secrets as random
import shlex
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from todobox_deploy.config import DatabaseConfig, ExpectedSchema
from todobox_deploy.core.outcome import PhaseOutcome, PhaseStatus
from todobox_deploy.core.streams import OutputSink, Stream
from todobox_deploy.db import live as db_live
from todobox_deploy.db.live import LiveTables
from todobox_deploy.db.schema import quote_ident
from todobox_deploy.engine.credentials import CredentialsError
from todobox_deploy.engine.migrate_runner import (
    FAILED_MARK,
    describe_steps,
    last_error_line,
    migration_script,
    migration_stdin,
    probe_app_import,
)
from todobox_deploy.engine.phases.spec import PhaseCall
from todobox_deploy.remote import quoting
from todobox_deploy.remote.errors import CommandCancelled

Facts = list[tuple[str, str]]

# What restoring a dump and running migrations in the scratch schema needs on it.
REQUIRED_PRIVILEGES = (
    "SELECT",
    "INSERT",
    "UPDATE",
    "DELETE",
    "CREATE",
    "DROP",
    "ALTER",
    "INDEX",
    "REFERENCES",
    "LOCK TABLES",
)
SCRATCH_INFIX = "_rehearsal_"
_MAX_PREFIX = 64 - len(SCRATCH_INFIX) - 6
_GRANT = re.compile(r"^GRANT (.+?) ON (\S+) TO ", re.IGNORECASE)
_SCOPE = re.compile(r"^(?:`((?:[^`]|``)+)`|([^`.\s]+))\.\*$")
_CHARSET = re.compile(r"[A-Za-z0-9_]+\Z")
_ALEMBIC_RUN = re.compile(r"Running (?:upgrade|downgrade|stamp_revision)\b.*")
_READ_TIMEOUT = 600.0
_DROP_LOCK_WAIT = 60
READER_FAILED, CLIENT_FAILED, BOTH_FAILED = 81, 82, 83


# -- privileges (pure) --------------------------------------------------------------------------------


def scratch_prefix(database: str) -> str:
    """``<db>_rehearsal_`` (the database name shortened so that a scratch name fits in 64 characters)."""
    return database[:_MAX_PREFIX] + SCRATCH_INFIX


def scratch_name(database: str, token: str) -> str:
    """``<db>_rehearsal_<6 hex>``."""
    if not re.fullmatch(r"[0-9a-f]{6}", token):
        raise ValueError(f"scratch token must be 6 hex digits, got {token!r}")
    return scratch_prefix(database) + token


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%")


def scratch_pattern(database: str) -> str:
    """The grant pattern that covers every scratch name of ``database``: ``todobox\\_rehearsal\\_%``."""
    return _like_escape(scratch_prefix(database)) + "%"


def _pattern_matches(pattern: str, name: str) -> bool:
    """MySQL's database-name wildcards in a GRANT: ``%`` any run, ``_`` one character, ``\\`` escapes."""
    out: list[str] = []
    chars = iter(pattern)
    for c in chars:
        if c == "\\":
            out.append(re.escape(next(chars, "\\")))
        elif c == "%":
            out.append(".*")
        elif c == "_":
            out.append(".")
        else:
            out.append(re.escape(c))
    return re.fullmatch("".join(out), name, re.DOTALL) is not None


def privileges_on(grant_lines: Iterable[str], schema: str) -> set[str]:
    """The privileges the grants give on ``schema`` (global and database-level; "ALL" when all)."""
    have: set[str] = set()
    for line in grant_lines:
        m = _GRANT.match(line)
        if not m:
            continue
        scope = m.group(2)
        if scope != "*.*":
            sm = _SCOPE.match(scope)
            if sm is None:  # table- or routine-level: not enough to create a schema
                continue
            pattern = sm.group(1).replace("``", "`") if sm.group(1) is not None else sm.group(2)
            if not _pattern_matches(pattern, schema):
                continue
        for privilege in m.group(1).split(","):
            name = privilege.strip().upper()
            have.add("ALL" if name in ("ALL", "ALL PRIVILEGES") else name)
    return have


def missing_privileges(grant_lines: Iterable[str], schema: str) -> list[str]:
    """Which of :data:`REQUIRED_PRIVILEGES` the grants lack on ``schema`` (empty: covered)."""
    have = privileges_on(grant_lines, schema)
    if "ALL" in have:
        return []
    return [p for p in REQUIRED_PRIVILEGES if p not in have]


def account_parts(current_user: str) -> tuple[str, str]:
    """``CURRENT_USER()`` (``user@host``) as (user, host)."""
    user, _, host = current_user.rpartition("@")
    return (user, host) if user else (current_user, "%")


def _sql_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def grant_statement(database: str, current_user: str) -> str:
    """The statement an administrator runs so that the account may own scratch schemas."""
    user, host = account_parts(current_user)
    return (
        f"GRANT ALL PRIVILEGES ON `{scratch_pattern(database)}`.* TO {_sql_string(user)}@{_sql_string(host)}"
    )


def missing_grant_message(
    database: str, current_user: str, missing: Sequence[str], *, admin_hint: str | None
) -> str:
    """Why the rehearsal cannot create its scratch schema, with the exact GRANT that fixes it."""
    user, host = account_parts(current_user)
    text = (
        f"the account '{user}'@'{host}' lacks {', '.join(missing)} on the scratch schema "
        f"{scratch_prefix(database)}XXXXXX; missing grant: {grant_statement(database, current_user)}"
    )
    return text + (f"; {admin_hint}" if admin_hint else "")


# -- DDL effects (pure) -------------------------------------------------------------------------------

ADDITIVE_KINDS = frozenset({"table added", "column added", "index added"})


@dataclass(frozen=True)
class DdlEffect:
    """One structural change the migration made to a table."""

    table: str
    kind: str  # "table added|dropped", "column added|dropped|changed", "index added|dropped|changed"
    name: str
    detail: str = ""

    @property
    def additive(self) -> bool:
        return self.kind in ADDITIVE_KINDS

    def describe(self) -> str:
        what = self.kind.split()[0]
        target = self.table if what == "table" else f"{self.table}: {what} {self.name}"
        verb = self.kind.split()[1]
        return f"{target} {verb}" + (f" ({self.detail})" if self.detail else "")


def _index_text(index: tuple[tuple[str, ...], bool]) -> str:
    return f"{'unique ' if index[1] else ''}on ({', '.join(index[0])})"


def ddl_effects(before: LiveTables, after: LiveTables) -> list[DdlEffect]:
    """What changed between two reads of a schema: tables, columns (types) and indexes, per table."""
    effects: list[DdlEffect] = []
    for table in sorted(set(before.columns) | set(after.columns)):
        old_cols, new_cols = before.columns.get(table), after.columns.get(table)
        if old_cols is None and new_cols is not None:
            effects.append(DdlEffect(table, "table added", table, f"columns {', '.join(new_cols)}"))
            continue
        if new_cols is None:
            effects.append(DdlEffect(table, "table dropped", table))
            continue
        assert old_cols is not None
        for column in new_cols:
            if column not in old_cols:
                effects.append(DdlEffect(table, "column added", column, new_cols[column]))
            elif old_cols[column] != new_cols[column]:
                detail = f"{old_cols[column]} -> {new_cols[column]}"
                effects.append(DdlEffect(table, "column changed", column, detail))
        effects += [DdlEffect(table, "column dropped", c, old_cols[c]) for c in old_cols if c not in new_cols]
        old_ix, new_ix = before.indexes.get(table, {}), after.indexes.get(table, {})
        for name in sorted(set(old_ix) | set(new_ix)):
            if name not in old_ix:
                effects.append(DdlEffect(table, "index added", name, _index_text(new_ix[name])))
            elif name not in new_ix:
                effects.append(DdlEffect(table, "index dropped", name, _index_text(old_ix[name])))
            elif old_ix[name] != new_ix[name]:
                detail = f"{_index_text(old_ix[name])} -> {_index_text(new_ix[name])}"
                effects.append(DdlEffect(table, "index changed", name, detail))
    return effects


def is_additive(effects: Iterable[DdlEffect]) -> bool:
    """Only tables, columns and indexes added (or no change at all): the old code still fits the schema."""
    return all(e.additive for e in effects)


def schema_check(
    live: LiveTables, expected: Sequence[ExpectedSchema], head: str
) -> tuple[list[tuple[str, str]], list[str]]:
    """(facts, problems) of a schema against what the deploy must reach and the expected Alembic head."""
    facts: list[tuple[str, str]] = []
    problems: list[str] = []
    for e in expected:
        ctype = live.columns.get(e.table.lower(), {}).get(e.column.lower())
        facts.append((f"copy: {e.table}.{e.column}", ctype or "MISSING"))
        if ctype is None:
            problems.append(f"{e.table}.{e.column} missing")
        elif e.type and ctype != e.type.lower():
            problems.append(f"{e.table}.{e.column} is {ctype}, expected {e.type.lower()}")
        if e.index:
            ix = live.indexes.get(e.table.lower(), {}).get(e.index.lower())
            facts.append((f"copy: index {e.index}", "MISSING" if ix is None else _index_text(ix)))
            if ix is None:
                problems.append(f"index {e.index} missing")
            elif ix[0] != (e.column.lower(),) or (e.unique and not ix[1]):
                want = f"{'unique ' if e.unique else ''}on ({e.column.lower()})"
                problems.append(f"index {e.index} is {_index_text(ix)}, expected {want}")
    versions = live.alembic
    facts.append(
        ("copy: alembic_version", "(no table)" if versions is None else ", ".join(versions) or "(empty)")
    )
    if versions != (head,):
        problems.append(f"alembic_version is {', '.join(versions or ()) or 'empty'}, expected {head}")
    return facts, problems


# -- host scripts (pure) ------------------------------------------------------------------------------


def restore_script(client: str, scratch: str, backup_path: str) -> str:
    """Bash text: the dump (gunzip'd, or cat for an uncompressed one) piped into ``mysql SCRATCH``.

    The option file (credentials) arrives on the command's stdin and is moved to fd 3 before anything
    reads stdin; every stage's status is printed and the exit code names the failed stage(s).
    """
    quoting.operand(backup_path, "backup file")
    reader = ["gzip", "-dc", "--", backup_path] if backup_path.endswith(".gz") else ["cat", "--", backup_path]
    mysql = [
        client,
        "--defaults-extra-file=/dev/fd/3",
        "--default-character-set=utf8mb4",
        quoting.operand(scratch, "scratch schema"),
    ]
    name = client.rsplit("/", 1)[-1]
    return "\n".join(
        [
            "exec 3<&0 </dev/null",
            f"{quoting.join(reader)} | {quoting.join(mysql)}",
            'st=("${PIPESTATUS[@]}")',
            "exec 3<&-",
            f'echo "stage exit statuses: {reader[0]} ${{st[0]}}, {name} ${{st[1]}}"',
            'bad=0; [ "${st[0]}" = 0 ] || bad=$((bad | 1)); [ "${st[1]}" = 0 ] || bad=$((bad | 2))',
            'if [ "$bad" != 0 ]; then exit $((80 + bad)); fi',
        ]
    )


def describe_restore_failure(rc: int, reader: str, client: str) -> str:
    known = {
        READER_FAILED: f"reading the backup ({reader}) failed",
        CLIENT_FAILED: f"the restore client ({client}) failed",
        BOTH_FAILED: f"reading the backup ({reader}) and the restore client ({client}) failed",
    }
    return known.get(rc, f"the restore script exited {rc}")


def extract_script(
    app_path: str, commit: str, migrations_dir: str, into: str, git_program: str = "git"
) -> str:
    """Bash text: ``git archive COMMIT MIGRATIONS_DIR | tar -x -C INTO``, every stage checked."""
    git = [git_program, "-C", app_path, "archive", "--format=tar", quoting.operand(commit, "commit"), "--"]
    git.append(quoting.operand(migrations_dir, "migrations directory"))
    return (
        f"{quoting.join(git)} | {quoting.join(['tar', '-x', '-C', into])}\n"
        'st=("${PIPESTATUS[@]}")\n'
        'echo "stage exit statuses: git archive ${st[0]}, tar ${st[1]}"\n'
        'if [ "${st[0]}" != 0 ] || [ "${st[1]}" != 0 ]; then exit 1; fi\n'
        f"test -d {shlex.quote(posixpath.join(into, migrations_dir, 'versions'))}"
    )


def repo_relative(app_path: str, migrations_dir: str) -> str | None:
    """The migrations directory relative to the app's work tree (None when it lies outside)."""
    if not posixpath.isabs(migrations_dir):
        rel = posixpath.normpath(migrations_dir)
    else:
        rel = posixpath.relpath(posixpath.normpath(migrations_dir), posixpath.normpath(app_path))
    return None if rel == "." or rel.startswith("..") else rel


# -- the phase ----------------------------------------------------------------------------------------


class RehearsalFailed(Exception):
    """A step failed; the message names it."""


@dataclass
class _Account:
    login: str  # the user name to log in as
    current_user: str  # CURRENT_USER(): user@host
    password: str
    how: str  # for the facts
    db: DatabaseConfig  # the config's database with this login (name: where PyMySQL connects)


def rehearsal(call: PhaseCall) -> PhaseOutcome:
    """Restore the verified backup into a scratch schema, rehearse the migration plan on it, drop it."""
    ctx = call.context
    if ctx.backup is None or not ctx.backup.verified:
        return PhaseOutcome(
            PhaseStatus.FAILED, "no verified backup in this deploy: run the backup phase first"
        )
    if not ctx.commit_target:
        return PhaseOutcome(PhaseStatus.FAILED, "no target commit: run the pre-flight first")
    if ctx.migration_plan is None:
        return PhaseOutcome(PhaseStatus.FAILED, "no migration plan: the pre-flight found no automatic path")
    if not ctx.migration_plan:
        return PhaseOutcome(
            PhaseStatus.SKIPPED, "nothing to rehearse: the pre-flight found nothing to migrate", ()
        )
    return _Rehearsal(call).run()


class _Rehearsal:
    def __init__(self, call: PhaseCall) -> None:
        self.call = call
        self.session = call.session
        self.config = call.config
        self.facts: Facts = []
        self.warnings: list[str] = []
        self.account: _Account | None = None
        self.conn: Any = None
        self.scratch: str | None = None
        self.created = False
        self.tmpdir: str | None = None
        self.step = "starting"

    def info(self, text: str) -> None:
        self.call.sink("info", [text])

    def fact(self, label: str, value: str) -> None:
        self.facts.append((label, value))

    # -- the run ---------------------------------------------------------------------------------

    def run(self) -> PhaseOutcome:
        failure: str | None = None
        cancelled: str | None = None
        try:
            self._body()
        except RehearsalFailed as exc:
            failure = str(exc)
        except CommandCancelled as exc:
            cancelled = f"cancelled while {self.step}: {exc}"
        except Exception as exc:  # a lost link, a refused login, a server error: say where
            failure = f"{self.step}: {self.session.secrets.redact(f'{type(exc).__name__}: {exc}')}"
        finally:
            cleanup = self._cleanup()
        problems = [p for p in (failure, *cleanup) if p]
        if cancelled:
            return PhaseOutcome(PhaseStatus.CANCELLED, "; ".join([cancelled, *cleanup]), tuple(self.facts))
        if problems:
            return PhaseOutcome(
                PhaseStatus.FAILED, "rehearsal FAILED: " + "; ".join(problems), tuple(self.facts)
            )
        summary = (
            f"rehearsed {describe_steps(self.call.context.migration_plan or ())} on a copy "
            f"({self.facts_value('migration duration')}); scratch schema dropped"
        )
        if self.warnings:
            return PhaseOutcome(
                PhaseStatus.WARNING, summary + "; " + "; ".join(self.warnings), tuple(self.facts)
            )
        return PhaseOutcome(PhaseStatus.OK, summary, tuple(self.facts))

    def facts_value(self, label: str) -> str:
        return dict(self.facts).get(label, "?")

    def _body(self) -> None:
        db = self.config.database
        self.scratch = scratch_name(db.name, random.token_hex(3))
        self.step = "choosing the account for the scratch schema"
        self.account = self._choose_account()
        self.fact("account", f"{self.account.current_user} ({self.account.how})")
        self.fact("scratch schema", self.scratch)
        self.conn = self._connect()
        self._create_scratch()
        self._restore()
        self._compare_checksums()
        self._cancelled()
        migrations = self._extract_migrations()
        self._probe()
        self._cancelled()
        self._migrate(migrations)

    def _cancelled(self) -> None:
        if self.call.cancel.is_set():
            raise CommandCancelled("the operator cancelled")

    # -- 1. the account ----------------------------------------------------------------------------

    def _choose_account(self) -> _Account:
        db = self.config.database
        assert self.scratch is not None
        conn = self.session.open_db()
        try:
            current = str(_scalar(conn, "SELECT CURRENT_USER()"))
            missing = missing_privileges(db_live.grants(conn), self.scratch)
        finally:
            conn.close()
        if not missing:
            return _Account(db.user, current, self.session.db_password(), "the app's account", db)
        self.info(f"the app account {current} cannot own {self.scratch}: lacks {', '.join(missing)}")
        if not db.admin_user:
            hint = (
                "or set [database] admin_user with admin_password_env or admin_password_env_file_key "
                "to an account that has it"
            )
            raise RehearsalFailed(missing_grant_message(db.name, current, missing, admin_hint=hint))
        password = self._admin_password()
        self.session.secrets.add(password)
        admin_db = dataclasses.replace(db, user=db.admin_user, name="information_schema")
        conn = self.session.connection.open_mysql(admin_db, password, read_timeout=_READ_TIMEOUT)
        try:
            admin_current = str(_scalar(conn, "SELECT CURRENT_USER()"))
            admin_missing = missing_privileges(db_live.grants(conn), self.scratch)
        finally:
            conn.close()
        if admin_missing:
            hint = f"(the app account {current} lacks {', '.join(missing)} there too)"
            raise RehearsalFailed(
                "[database] admin_user: "
                + missing_grant_message(db.name, admin_current, admin_missing, admin_hint=hint)
            )
        how = f"[database] admin_user; the app account {current} lacks {', '.join(missing)} on {self.scratch}"
        return _Account(db.admin_user, admin_current, password, how, admin_db)

    def _admin_password(self) -> str:
        db = self.config.database
        assert db.admin_user is not None
        if not (db.admin_password_env or db.admin_password_env_file_key):
            raise RehearsalFailed(
                f"[database] admin_user {db.admin_user} has no password source: set admin_password_env "
                "(a local environment variable) or admin_password_env_file_key (a key in the app's env "
                "file); a prompt is not available during a phase"
            )
        try:
            return self.session.admin_password()
        except (CredentialsError, OSError) as exc:
            raise RehearsalFailed(
                f"no password for [database] admin_user {db.admin_user}: {exc} (a prompt is not available "
                "during a phase)"
            ) from None

    def _connect(self) -> Any:
        assert self.account is not None
        conn = self.session.connection.open_mysql(
            self.account.db, self.account.password, read_timeout=_READ_TIMEOUT
        )
        conn.autocommit(True)
        return conn

    # -- 2. restore --------------------------------------------------------------------------------

    def _create_scratch(self) -> None:
        assert self.scratch is not None
        db = self.config.database
        self.step = f"creating the scratch schema {self.scratch}"
        leftovers = self._leftovers()
        if leftovers:
            self.fact("earlier scratch schemas", f"{', '.join(leftovers)} (not touched: drop them by hand)")
            self.call.sink(
                "stderr", [f"earlier rehearsals left scratch schemas behind: {', '.join(leftovers)}"]
            )
        prod = self.session.open_db()
        try:
            row = _row(
                prod,
                "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA "
                "WHERE SCHEMA_NAME = %s",
                (db.name,),
            )
        finally:
            prod.close()
        charset = ""
        if row and all(isinstance(v, str) and _CHARSET.match(v) for v in row):
            charset = f" CHARACTER SET {row[0]} COLLATE {row[1]}"
        self.created = True  # from here on, the cleanup drops it (IF EXISTS)
        _execute(self.conn, f"CREATE DATABASE {quote_ident(self.scratch)}{charset}")
        self.info(f"created {self.scratch}{charset} as {self.account.current_user if self.account else '?'}")

    def _leftovers(self) -> list[str]:
        prefix = scratch_prefix(self.config.database.name)
        rows = _rows(
            self.conn,
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE %s",
            (scratch_pattern(self.config.database.name),),
        )
        pattern = re.compile(re.escape(prefix) + r"[0-9a-f]{6}\Z")
        return sorted(str(r[0]) for r in rows if pattern.match(str(r[0])))

    def _restore(self) -> None:
        assert self.account is not None and self.scratch is not None
        backup = self.call.context.backup
        assert backup is not None
        db = self.config.database
        self.step = f"restoring {backup.path} into {self.scratch}"
        res = self.session.capture(["stat", "-c", "%s", "--", backup.path], display=f"stat {backup.path}")
        if res.exit_status != 0 or res.stdout.strip() != str(backup.size):
            raise RehearsalFailed(
                f"the backup {backup.path} is missing or changed since it was verified "
                f"(size now {res.stdout.strip() or '?'}, recorded {backup.size})"
            )
        from todobox_deploy.remote.mysql import option_file

        login = dataclasses.replace(db, user=self.account.login)
        script = restore_script(db.client, self.scratch, backup.path)
        reader = "gzip -dc" if backup.path.endswith(".gz") else "cat"
        display = f"{reader} {backup.path} | {db.client} {self.scratch}"
        self.call.sink("info", [f"$ {display}"])
        start = time.monotonic()
        rc = self.session.run(
            script,
            self.call.sink,
            cancel=self.call.cancel,
            stdin=option_file(login, self.account.password),
            display=display,
        )
        seconds = time.monotonic() - start
        if rc != 0:
            raise RehearsalFailed(
                f"restore into {self.scratch} FAILED: {describe_restore_failure(rc, reader, db.client)}"
            )
        self.fact(
            "backup restored", f"{backup.path} ({backup.size} bytes) into {self.scratch} in {seconds:.1f} s"
        )

    # -- 3. fidelity -------------------------------------------------------------------------------

    def _compare_checksums(self) -> None:
        assert self.scratch is not None
        db = self.config.database
        self.step = "comparing CHECKSUM TABLE of the copy with production"
        self.info("comparing CHECKSUM TABLE and row counts of the copy with production now")
        tables = sorted({e.table for e in self.config.migration.expected()})
        prod = self.session.open_db(read_timeout=_READ_TIMEOUT)
        try:
            for table in tables:
                copy_sum = db_live.checksum(self.conn, self.scratch, table)
                copy_rows = _scalar(
                    self.conn, f"SELECT COUNT(*) FROM {quote_ident(self.scratch)}.{quote_ident(table)}"
                )
                prod_sum = db_live.checksum(prod, db.name, table)
                prod_rows = _scalar(prod, f"SELECT COUNT(*) FROM {quote_ident(db.name)}.{quote_ident(table)}")
                label = f"checksum {table}"
                if copy_sum is None or prod_sum is None:
                    self.fact(
                        label,
                        f"cannot verify: CHECKSUM TABLE gave NULL (copy {copy_sum}, production {prod_sum})",
                    )
                    self.warnings.append(f"cannot verify the copy of {table}: CHECKSUM TABLE gave no value")
                elif copy_sum == prod_sum:
                    self.fact(label, f"equal: {copy_sum} ({copy_rows} rows in the copy and in production)")
                else:
                    self.fact(
                        label,
                        f"DIFFERENT: copy {copy_sum} ({copy_rows} rows), "
                        f"production now {prod_sum} ({prod_rows} rows)",
                    )
                    self.warnings.append(
                        f"{table} in production differs from the backup's copy ({copy_rows} rows in the "
                        f"copy, {prod_rows} now): production was written since the backup; this is not "
                        "a proof that the copy is faithful"
                    )
        finally:
            prod.close()

    # -- 4. the target commit's migrations ---------------------------------------------------------

    def _extract_migrations(self) -> str:
        app, mig = self.config.app, self.config.migration
        commit = self.call.context.commit_target
        assert commit is not None
        self.step = f"extracting {mig.migrations_dir} of {commit[:12]}"
        rel = repo_relative(app.path, mig.migrations_dir)
        if rel is None:
            raise RehearsalFailed(
                f"[migration] migrations_dir {mig.migrations_dir} is not inside the app's work tree "
                f"{app.path}: cannot take it from the target commit"
            )
        base = self.config.backup.directory.rstrip("/") or "/"
        template = posixpath.join(base, "todobox-rehearsal.XXXXXX")
        res = self.session.capture(["mktemp", "-d", "--", template], display=f"mktemp -d {template}")
        made = res.stdout.strip()
        if res.exit_status != 0 or not _is_our_tmpdir(made, base):
            raise RehearsalFailed(f"cannot create a temp directory under {base}: {res.stderr.strip()[:200]}")
        self.tmpdir = made
        out: list[str] = []
        rc = self.session.run(
            extract_script(app.path, commit, rel, made, app.git),
            _tee(self.call.sink, out),
            cancel=self.call.cancel,
            display=f"git archive {commit[:12]} {rel} | tar -x -C {made}",
        )
        if rc != 0:
            raise RehearsalFailed(
                f"extracting {rel} of {commit[:12]} into {made} failed "
                f"({'; '.join(out[-2:]) or f'exit {rc}'})"
            )
        where = posixpath.join(made, rel)
        self.fact("migrations", f"{where} (git archive of {commit[:12]})")
        return where

    # -- 5. the app's own flask db -----------------------------------------------------------------

    def _probe(self) -> None:
        self.step = "probing the app's import (flask db current, current code)"
        self.info("probing whether the app's own `flask db` works (the current code's import)")
        ok, text = probe_app_import(self.session)
        first = text.splitlines()[0] if text else ""
        if ok:
            self.fact("app's own flask db", f"usable: the current code imports (flask db current: {first})")
        else:
            self.fact(
                "app's own flask db",
                f"NOT usable: {first}; the real migration has to run standalone (the app not imported)",
            )

    # -- 6. the migration --------------------------------------------------------------------------

    def _migrate(self, migrations: str) -> None:
        assert self.account is not None and self.scratch is not None
        plan = self.call.context.migration_plan or ()
        cfg = self.config
        self.step = f"running {describe_steps(plan)} on {self.scratch}"
        before = db_live.read_live_tables(self.conn, self.scratch)
        login_cfg = dataclasses.replace(
            cfg, database=dataclasses.replace(cfg.database, user=self.account.login)
        )
        script = migration_script(
            login_cfg, plan, mode="standalone", database_name=self.scratch, migrations_dir=migrations
        )
        lines: list[str] = []
        self.fact("steps", describe_steps(plan))
        display = f"standalone migration {describe_steps(plan)} on {self.scratch}"
        self.call.sink("info", [f"$ {display}"])
        start = time.monotonic()
        rc = self.session.run(
            script,
            _tee(self.call.sink, lines, streams=("stdout", "stderr")),
            cancel=self.call.cancel,
            stdin=migration_stdin("standalone", self.account.password),
            display=display,
        )
        seconds = time.monotonic() - start
        runs = [m.group(0).strip() for m in (_ALEMBIC_RUN.search(line) for line in lines) if m]
        self.fact("Alembic ran", "; ".join(runs) or "(no 'Running upgrade' line)")
        self.fact("migration duration", f"{seconds:.2f} s")
        after = db_live.read_live_tables(self.conn, self.scratch)
        effects = ddl_effects(before, after)
        done = "; ".join(e.describe() for e in effects) or "none (no structural change)"
        if rc != 0:  # MySQL DDL is not transactional: show what the failed run left applied
            self.fact("DDL effects", f"{done} (left by the FAILED run)")
            raise RehearsalFailed(f"the migration FAILED on the copy (exit {rc}): {_migration_error(lines)}")
        additive = is_additive(effects)
        self.fact("DDL effects", done)
        self.fact(
            "additive",
            "yes: only tables, columns and indexes added"
            if additive
            else "NO: " + "; ".join(e.describe() for e in effects if not e.additive),
        )
        self.call.establish(rehearsal_seconds=round(seconds, 2), migration_additive=additive)
        facts, problems = schema_check(after, cfg.migration.expected(), cfg.migration.expected_head)
        self.facts += facts
        self.fact(
            "resulting schema", "as expected" if not problems else "NOT as expected: " + "; ".join(problems)
        )
        if problems:
            raise RehearsalFailed("after the migration the copy is not as expected: " + "; ".join(problems))

    # -- 7. cleanup (always) -----------------------------------------------------------------------

    def _cleanup(self) -> list[str]:
        problems: list[str] = []
        if self.created and self.scratch is not None:
            problem = self._drop_scratch()
            if problem:
                problems.append(problem)
        if self.conn is not None:
            _close(self.conn)
        if self.tmpdir is not None:
            problem = self._remove_tmpdir()
            if problem:
                problems.append(problem)
        return problems

    def _drop_scratch(self) -> str | None:
        assert self.scratch is not None
        name = self.scratch
        by_hand = f"drop it by hand: DROP DATABASE {quote_ident(name)}"
        try:
            conn = self.conn
            try:
                _execute(conn, f"SET SESSION lock_wait_timeout = {_DROP_LOCK_WAIT}")
            except Exception:  # the link or the session died: a fresh connection (after a reconnect)
                _close(conn)
                self.conn = conn = self._connect()
                _execute(conn, f"SET SESSION lock_wait_timeout = {_DROP_LOCK_WAIT}")
            _execute(conn, f"DROP DATABASE IF EXISTS {quote_ident(name)}")
            left = _rows(
                conn, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (name,)
            )
        except Exception as exc:
            reason = self.session.secrets.redact(f"{type(exc).__name__}: {exc}")
            self.fact("scratch schema dropped", f"NO: {reason}; {by_hand}")
            return f"the scratch schema {name} could not be dropped ({reason}); {by_hand}"
        if left:
            self.fact("scratch schema dropped", f"NO: {name} still exists; {by_hand}")
            return f"the scratch schema {name} still exists after DROP DATABASE; {by_hand}"
        self.fact("scratch schema dropped", f"yes: {name} no longer exists (information_schema.SCHEMATA)")
        self.info(f"dropped {name}")
        return None

    def _remove_tmpdir(self) -> str | None:
        assert self.tmpdir is not None
        path = self.tmpdir
        try:
            rc = self.session.capture(
                f"rm -rf -- {shlex.quote(path)} && ! test -e {shlex.quote(path)}", display=f"rm -rf {path}"
            ).exit_status
        except Exception as exc:
            rc, why = -1, str(exc)
        else:
            why = f"exit {rc}"
        if rc != 0:
            self.fact("temp dir removed", f"NO: {path} ({why})")
            return f"the temp dir {path} could not be removed ({why}): remove it by hand"
        self.fact("temp dir removed", f"yes: {path}")
        return None


# -- helpers ------------------------------------------------------------------------------------------


def _migration_error(lines: Sequence[str]) -> str:
    """The error that stopped the migration; the runner's own "exited with status" line only as a suffix."""
    marked = last_error_line(lines)
    detail = last_error_line([line for line in lines if FAILED_MARK not in line])
    if detail is None or detail == marked:
        return marked or "no error line in its output"
    return f"{detail} ({marked})" if marked else detail


def _is_our_tmpdir(path: str, base: str) -> bool:
    return (
        re.fullmatch(re.escape(posixpath.join(base, "todobox-rehearsal.")) + r"[A-Za-z0-9]{6,}", path)
        is not None
    )


def _tee(sink: OutputSink, into: list[str], streams: Sequence[Stream] = ("stdout",)) -> OutputSink:
    def tee(stream: Stream, lines: list[str]) -> None:
        if stream in streams:
            into.extend(lines)
        sink(stream, lines)

    return tee


def _execute(conn: Any, sql: str, args: Sequence[object] | None = None) -> None:
    with conn.cursor() as cur:
        cur.execute(sql, args)


def _rows(conn: Any, sql: str, args: Sequence[object] | None = None) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return list(cur.fetchall())


def _row(conn: Any, sql: str, args: Sequence[object] | None = None) -> tuple[Any, ...] | None:
    rows = _rows(conn, sql, args)
    return tuple(rows[0]) if rows else None


def _scalar(conn: Any, sql: str, args: Sequence[object] | None = None) -> Any:
    row = _row(conn, sql, args)
    return row[0] if row else None


def _close(conn: Any) -> None:
    with contextlib.suppress(Exception):  # already closed or the link is gone
        conn.close()
