"""The rollback's phases: probe, stop, preview a restore's loss, the one database action, code, start, verify.

The probe decides (``engine/rollback.py``) and stores the plan in the context; every later phase reads it
and re-checks the host before it changes anything. The database action runs detached under a run id fixed
by the plan, so a re-run of the phase re-attaches to it instead of running it twice.
"""

from __future__ import annotations

import dataclasses
import posixpath
import secrets as random
import shlex
from collections.abc import Sequence
from typing import Any

from todobox_deploy.config import DatabaseConfig
from todobox_deploy.core.outcome import PhaseOutcome, PhaseStatus
from todobox_deploy.db import live as db_live
from todobox_deploy.db.schema import query, quote_ident
from todobox_deploy.engine import rollback as rb
from todobox_deploy.engine.credentials import CredentialsError
from todobox_deploy.engine.flask_cli import app_command, app_python
from todobox_deploy.engine.migrate_runner import migration_script, migration_stdin
from todobox_deploy.engine.phases.common import keep_stdout
from todobox_deploy.engine.phases.service import probe_url, start_app, stop_app
from todobox_deploy.engine.phases.spec import PhaseCall, PhaseSpec
from todobox_deploy.remote.errors import (
    CommandCancelled,
    HostUnreachable,
    LinkLost,
    RemoteError,
    RunStateUnknown,
)
from todobox_deploy.remote.mysql import mysql_script_with_input

Facts = list[tuple[str, str]]


# -- the plan in the context ---------------------------------------------------------------------


def _pairs(call: PhaseCall) -> list[tuple[str, str]]:
    return list(call.context.rollback_plan or ())


def _extra(call: PhaseCall, key: str) -> str | None:
    return dict(_pairs(call)).get(key)


def _extras(call: PhaseCall, prefix: str) -> dict[str, str]:
    return {k[len(prefix) :]: v for k, v in _pairs(call) if k.startswith(prefix)}


def _store(call: PhaseCall, replace: Sequence[str], pairs: Sequence[tuple[str, str]]) -> None:
    """Set keys in the context's rollback_plan: drop keys starting with any of ``replace``, add ``pairs``."""
    kept = [(k, v) for k, v in _pairs(call) if not any(k.startswith(p) for p in replace)]
    call.establish(rollback_plan=tuple(kept) + tuple(pairs))


def _plan(call: PhaseCall) -> rb.RollbackPlan:
    plan = rb.RollbackPlan.from_pairs(_pairs(call))
    if plan is None:
        raise RuntimeError("no rollback plan in the context: the probe must run first")
    return plan


_PLAN_KEYS = ("db", "code", "expected_revision", "migrations_from", "note", "columns_before:")


def _failed(summary: str, facts: Facts | None = None) -> PhaseOutcome:
    return PhaseOutcome(PhaseStatus.FAILED, summary, tuple(facts or ()))


def _read_db(call: PhaseCall) -> tuple[db_live.LiveTables | None, str | None]:
    try:
        conn = call.session.open_db(read_timeout=60)
        try:
            return db_live.read_live_tables(conn, call.config.database.name), None
        finally:
            conn.close()
    except Exception as exc:
        return None, f"cannot verify the database: {call.session.secrets.redact(str(exc))}"


def _db_facts(call: PhaseCall, tables: db_live.LiveTables) -> Facts:
    facts: Facts = [("alembic_version", ", ".join(tables.alembic or ()) or "(none)")]
    for item in rb.item_states(tables.columns, tables.indexes, call.config.migration.expected()):
        facts.append((item.name, f"{item.state}: {item.detail}"))
    return facts


# -- probe --------------------------------------------------------------------------------------


def rollback_probe(call: PhaseCall) -> PhaseOutcome:
    """Read-only: what the host shows, the deploy's backup, and the plan that fits them."""
    session, sink, ctx = call.session, call.sink, call.context
    deploy = _extra(call, "deploy_session")
    if deploy:
        sink("info", [f"rolling back the deploy recorded in {deploy}"])
    token = _extra(call, "token") or random.token_hex(4)
    busy = _running_runs(call, token)
    if busy:
        return _failed(
            f"a database action of an earlier rollback session is still running on the host ({busy}): "
            "wait for it to end, then run this probe again (it is never started twice)"
        )
    found, backup = rb.probe(session, ctx)
    plan = rb.plan_for(call.config, found, ctx, backup)
    columns = [(f"columns_before:{t}", ",".join(c)) for t, c in backup.columns.items()]
    _store(call, (*_PLAN_KEYS, "token"), [*plan.to_pairs(), ("token", token), *columns])
    app = "cannot verify" if found.app_up is None else ("up" if found.app_up else "down")
    facts: Facts = [("deploy", deploy or "(not recorded)"), ("app", app)]
    if _extra(call, "unfinished_rollback"):
        facts.append(
            (
                "earlier rollback",
                f"{_extra(call, 'unfinished_rollback')} did not end; its runs keep their ids",
            )
        )
    before = ctx.commit_before or "(unknown)"
    facts.append(("HEAD", f"{found.head or 'cannot verify'} (before the deploy: {before})"))
    facts.append(("work tree", {None: "cannot verify", True: "LOCAL CHANGES", False: "clean"}[found.dirty]))
    facts.append(("alembic_version", ", ".join(found.alembic) if found.alembic else "cannot verify"))
    for item in found.items or ():
        facts.append((item.name, f"{item.state}: {item.detail}"))
    facts.append(("backup", _backup_text(backup)))
    target = f" {plan.db_target}" if plan.db_target else ""
    facts.append(("database action", f"{plan.db.upper()}{target}: {plan.db_reason}"))
    facts.append(("code action", f"{plan.code.upper()}: {plan.code_reason}"))
    facts.append(("alembic_version afterwards", plan.expected_revision or "(unknown)"))
    facts += [("note", n) for n in (*plan.notes, *found.notes)]
    if plan.refused:
        why = plan.db_reason if plan.db == "refused" else plan.code_reason
        return _failed(f"no safe rollback: {why}", facts)
    summary = f"plan: database {plan.db}{target}; code {plan.code}" + (
        f" to {plan.code_target[:12]}" if plan.code == "reset" and plan.code_target else ""
    )
    return PhaseOutcome(PhaseStatus.OK, summary, tuple(facts))


def _run_id(action: str, token: str) -> str:
    return f"rollback-{action}-{token}"


def _running_runs(call: PhaseCall, token: str) -> str:
    """The rollback runs of this token still running on the host (an earlier session's), comma-joined."""
    if not _extra(call, "unfinished_rollback"):
        return ""
    runs = [_run_id(a, token) for a in ("downgrade", "restore")]
    return ", ".join(r for r in runs if call.session.connection.run_state(r)[0] == "running")


def _backup_text(backup: rb.BackupFacts) -> str:
    r = backup.record
    if r is None:
        return "none recorded by the deploy"
    state = "verified" if r.verified else "NOT verified"
    if backup.intact:
        found = f"intact (size and sha256 re-read); alembic_version {backup.revision or '(none)'}"
    else:
        found = f"unusable: {backup.problem}"
    return f"{r.path} ({state} {r.created_at}; {found})"


# -- stop / start -------------------------------------------------------------------------------


def _nothing_to_change(call: PhaseCall) -> bool:
    plan = _plan(call)
    return plan.db == "none" and plan.code == "none"


def rollback_stop(call: PhaseCall) -> PhaseOutcome:
    """Stop the app (already down: show it; nothing to roll back: leave it running)."""
    app = call.config.app
    if _nothing_to_change(call):
        return PhaseOutcome(PhaseStatus.SKIPPED, "nothing to roll back: the app is not stopped")
    if app.health_url and probe_url(call.session, app.health_url, call.sink) is None:
        return PhaseOutcome(
            PhaseStatus.OK,
            f"{app.health_url} does not answer: the app is already down",
            (("health", "down"),),
        )
    return stop_app(call)


def rollback_start(call: PhaseCall) -> PhaseOutcome:
    """Start the app; when nothing was rolled back and it answers, it is left as it is."""
    app = call.config.app
    if (
        _nothing_to_change(call)
        and app.health_url
        and probe_url(call.session, app.health_url, call.sink) == 200
    ):
        return PhaseOutcome(
            PhaseStatus.SKIPPED, f"nothing was rolled back and {app.health_url} answers 200: not restarted"
        )
    return start_app(call)


# -- preview: what a restore would lose ----------------------------------------------------------


def rollback_preview(call: PhaseCall) -> PhaseOutcome:
    """Before a restore, with the app stopped: the writes since the backup that the restore throws away."""
    plan = _plan(call)
    if plan.db != "restore" or plan.db_target is None:
        return PhaseOutcome(
            PhaseStatus.SKIPPED, f"no restore in the plan (database: {plan.db}): nothing is lost"
        )
    token = _extra(call, "token") or random.token_hex(4)
    account = _scratch_account(call)
    losses: list[rb.TableLoss] | None = None
    method = ""
    if account is not None:
        losses, sums, method = _scratch_losses(call, plan.db_target, token, *account)
        if losses is not None:
            _store(call, ("backup_checksum:",), [(f"backup_checksum:{t}", v) for t, v in sums.items()])
    if losses is None:
        losses, method = _dump_count_losses(call, plan.db_target)
    if losses is None:
        return _failed(f"cannot show what the restore would lose ({method}): the restore is not offered")
    now = _checksums(call, [t.table for t in losses if t.rows_now is not None])
    _store(call, ("preview_checksum:",), [(f"preview_checksum:{t}", v or "NULL") for t, v in now.items()])
    summary, lost = rb.loss_summary(losses, method)
    facts: Facts = [("method", method), *((t.table, t.describe()) for t in losses)]
    status = PhaseStatus.OK if lost is False else PhaseStatus.WARNING
    return PhaseOutcome(status, summary, tuple(facts))


def _scratch_account(call: PhaseCall) -> tuple[DatabaseConfig, str] | None:
    """The account that may create a scratch schema: ``[database] admin_user``, else the app's own."""
    session, db = call.session, call.config.database
    if not db.admin_user:
        return db, session.db_password()
    admin = session.admin_database()
    assert admin is not None
    try:
        password = session.admin_password()
    except (CredentialsError, OSError) as exc:
        call.sink("stderr", [f"[database] admin_user {db.admin_user}: no password ({exc})"])
        return None
    return admin, password


def _scratch_losses(
    call: PhaseCall, path: str, token: str, account: DatabaseConfig, password: str
) -> tuple[list[rb.TableLoss] | None, dict[str, str], str]:
    """Restore the backup into a scratch schema and compare it with production table by table."""
    session, sink, prod = call.session, call.sink, call.config.database.name
    scratch = f"{prod}_rollback_{token}"[:64]
    method = f"scratch restore into {scratch} as {account.user}, compared by primary key and CHECKSUM TABLE"
    try:
        conn = session.connection.open_mysql(account, password, read_timeout=600)
    except Exception as exc:
        sink(
            "stderr",
            [f"scratch restore: cannot connect as {account.user}: {session.secrets.redact(str(exc))}"],
        )
        return None, {}, ""
    try:
        try:
            query(conn, f"CREATE DATABASE {quote_ident(scratch)}")
        except Exception as exc:
            sink(
                "stderr",
                [f"cannot create a scratch schema as {account.user}: {exc}; counting the dump instead"],
            )
            return None, {}, ""
        try:
            sink("info", [f"restoring {path} into the scratch schema {scratch} (production is not touched)"])
            script, stdin = mysql_script_with_input(
                dataclasses.replace(account, name=scratch), password, input_file=path
            )
            rc = session.run(
                script, sink, cancel=call.cancel, stdin=stdin, display=f"restore {path} into {scratch}"
            )
            if rc != 0:
                sink("error", [f"the scratch restore exited {rc}"])
                return None, {}, ""
            return _compare(conn, prod, scratch) + (method,)
        finally:
            query(conn, f"DROP DATABASE IF EXISTS {quote_ident(scratch)}")
            sink("info", [f"dropped the scratch schema {scratch}"])
    finally:
        conn.close()


def _one(conn: Any, sql: str, args: Sequence[object] | None = None) -> str:
    return query(conn, sql, args).rows[0][0]


def _compare(conn: Any, prod: str, scratch: str) -> tuple[list[rb.TableLoss], dict[str, str]]:
    """Per table of the backup: rows inserted/deleted/changed in production since (by primary key)."""
    cols_sql = (
        "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s "
        "ORDER BY TABLE_NAME, ORDINAL_POSITION"
    )
    pk_sql = (
        "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = %s "
        "AND INDEX_NAME = 'PRIMARY' ORDER BY TABLE_NAME, SEQ_IN_INDEX"
    )

    def columns(schema: str, sql: str) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for table, column in query(conn, sql, (schema,)).rows:
            out.setdefault(table, []).append(column)
        return out

    in_backup, in_prod, keys = columns(scratch, cols_sql), columns(prod, cols_sql), columns(scratch, pk_sql)
    losses: list[rb.TableLoss] = []
    sums: dict[str, str] = {}
    for table, cols in in_backup.items():
        s, p = f"{quote_ident(scratch)}.{quote_ident(table)}", f"{quote_ident(prod)}.{quote_ident(table)}"
        sums[table] = db_live.checksum(conn, scratch, table) or "NULL"
        rows_b = int(_one(conn, f"SELECT COUNT(*) FROM {s}"))
        if table not in in_prod:
            losses.append(rb.TableLoss(table, rows_b, None))
            continue
        rows_n = int(_one(conn, f"SELECT COUNT(*) FROM {p}"))
        pk = keys.get(table, [])
        now_cols = in_prod[table]
        extra = tuple(
            (c, int(_one(conn, f"SELECT COUNT(*) FROM {p} WHERE {quote_ident(c)} IS NOT NULL")))
            for c in now_cols
            if c not in cols
        )
        if not pk or any(c not in now_cols for c in pk):
            same = (db_live.checksum(conn, prod, table) or "") == sums[table]
            note = (
                f"no primary key to match rows: counts only; CHECKSUM TABLE {'equal' if same else 'differs'}"
            )
            losses.append(rb.TableLoss(table, rows_b, rows_n, values_lost=extra, note=note))
            continue
        on = " AND ".join(f"p.{quote_ident(c)} = s.{quote_ident(c)}" for c in pk)
        first = quote_ident(pk[0])
        inserted = int(
            _one(conn, f"SELECT COUNT(*) FROM {p} p LEFT JOIN {s} s ON {on} WHERE s.{first} IS NULL")
        )
        deleted = int(
            _one(conn, f"SELECT COUNT(*) FROM {s} s LEFT JOIN {p} p ON {on} WHERE p.{first} IS NULL")
        )
        common = [c for c in cols if c in now_cols and c not in pk]
        equal = " AND ".join(
            f"CAST(p.{quote_ident(c)} AS BINARY) <=> CAST(s.{quote_ident(c)} AS BINARY)" for c in common
        )
        changed = 0
        if common:
            changed = int(_one(conn, f"SELECT COUNT(*) FROM {p} p JOIN {s} s ON {on} WHERE NOT ({equal})"))
        losses.append(rb.TableLoss(table, rows_b, rows_n, inserted, deleted, changed, extra))
    for table in sorted(set(in_prod) - set(in_backup)):
        rows_n = int(_one(conn, f"SELECT COUNT(*) FROM {quote_ident(prod)}.{quote_ident(table)}"))
        losses.append(rb.TableLoss(table, None, rows_n, in_backup=False))
    return losses, sums


# Counts the rows of each table's INSERTs in a dump, read-only. Quoted strings (never spanning a line in a
# dump) are removed first; then every "(" left in a VALUES list opens one row. MariaDB writes a row per line.
_COUNT_ROWS = r"""
import gzip, re, sys
path = sys.argv[1]
strings = re.compile(rb"'(?:[^'\\]|\\.)*'")
head = re.compile(rb"INSERT INTO `((?:[^`]|``)+)` (?:\([^)]*\) )?VALUES")
counts, table = {}, None
with (gzip.open if path.endswith(".gz") else open)(path, "rb") as fh:
    for line in fh:
        if table is None:
            m = head.match(line)
            if not m:
                continue
            table, line = m.group(1).replace(b"``", b"`").decode("utf-8", "replace"), line[m.end():]
        body = strings.sub(b"''", line)
        counts[table] = counts.get(table, 0) + body.count(b"(")
        if body.rstrip().endswith(b";"):
            table = None
for name, n in sorted(counts.items()):
    print("C\t%s\t%d" % (name, n))
"""


def _dump_count_losses(call: PhaseCall, path: str) -> tuple[list[rb.TableLoss] | None, str]:
    """Fallback without a scratch schema: rows per table in the dump against COUNT(*) now."""
    session, sink, db = call.session, call.sink, call.config.database
    method = "row counts from the dump against COUNT(*) (no scratch schema: updated rows cannot be seen)"
    lines: list[str] = []
    argv = [app_python(call.config.app), "-c", _COUNT_ROWS, path]
    rc = session.run(
        argv, keep_stdout(lambda s, ls: None, lines), cancel=call.cancel, display=f"count rows in {path}"
    )
    if rc != 0:
        return None, f"counting the rows in {path} exited {rc}"
    counts = {p[1]: int(p[2]) for p in (ln.split("\t") for ln in lines) if len(p) == 3 and p[0] == "C"}
    in_backup = set(_extras(call, "columns_before:")) | {t.lower() for t in counts}
    live = {t.lower(): t for t in _table_names(call)}
    losses: list[rb.TableLoss] = []
    conn = session.open_db(read_timeout=600)
    try:
        for key in sorted(in_backup | set(live)):
            name = live.get(key) or next((t for t in counts if t.lower() == key), key)
            now = None
            if key in live:
                now = int(_one(conn, f"SELECT COUNT(*) FROM {quote_ident(db.name)}.{quote_ident(name)}"))
            backup = counts.get(name, 0) if key in in_backup else None
            losses.append(rb.TableLoss(name, backup, now, note="counts only", in_backup=key in in_backup))
    finally:
        conn.close()
    sink("info", [f"compared by {method}"])
    return losses, method


def _table_names(call: PhaseCall) -> list[str]:
    conn = call.session.open_db(read_timeout=60)
    try:
        sql = (
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s "
            "AND TABLE_TYPE = 'BASE TABLE'"
        )
        return [r[0] for r in query(conn, sql, (call.config.database.name,)).rows]
    finally:
        conn.close()


def _checksums(call: PhaseCall, tables: Sequence[str]) -> dict[str, str | None]:
    conn = call.session.open_db(read_timeout=600)
    try:
        return {t: db_live.checksum(conn, call.config.database.name, t) for t in tables}
    finally:
        conn.close()


# -- the one database action --------------------------------------------------------------------


def rollback_db(call: PhaseCall) -> PhaseOutcome:
    """Downgrade to the explicit previous revision, or restore the backup, or nothing: never two."""
    session, sink = call.session, call.sink
    plan = _plan(call)
    if plan.db == "refused":
        return _failed(f"the plan refuses a database action: {plan.db_reason}")
    if plan.db == "none":
        tables, problem = _read_db(call)
        facts = _db_facts(call, tables) if tables else [("database", problem or "")]
        return PhaseOutcome(PhaseStatus.OK, f"nothing to do on the database: {plan.db_reason}", tuple(facts))
    run_id = _run_id(plan.db, _extra(call, "token") or "x")
    try:
        state, _, _ = session.connection.run_state(run_id)
        if state == "absent":
            problem = _changed_since_plan(call, plan)
            if problem is not None:
                return _failed(f"{problem}: nothing was changed; run the rollback again for a new plan")
            rc = _launch(call, plan, run_id)
        elif state in ("running", "finished"):
            sink("info", [f"run {run_id} was started before: re-attaching, it is never run twice"])
            rc = session.connection.attach(run_id, sink, cancel=call.cancel, secrets=session.secrets)
        else:
            return _failed(f"run {run_id} left no exit code (killed, or the host rebooted): check the host")
    except CommandCancelled as exc:
        return PhaseOutcome(PhaseStatus.CANCELLED, f"{plan.db} cancelled: {exc}; run the probe again")
    except (LinkLost, HostUnreachable) as exc:
        return _failed(f"lost the host: {exc}. Run {run_id} goes on there: run this phase again to re-attach")
    except RunStateUnknown as exc:
        return _failed(str(exc))
    return _after_db(call, plan, run_id, rc)


def _changed_since_plan(call: PhaseCall, plan: rb.RollbackPlan) -> str | None:
    """Why the database no longer matches what the confirmed plan was made for, or None."""
    tables, problem = _read_db(call)
    if tables is None:
        return problem
    if plan.db == "downgrade":
        items = rb.item_states(tables.columns, tables.indexes, call.config.migration.expected())
        head = call.config.migration.expected_head
        if tables.alembic != (head,) or not all(i.state == "present" for i in items):
            return (
                f"the database changed since the probe (alembic_version {tables.alembic}, not {head} intact)"
            )
        return None
    preview = _extras(call, "preview_checksum:")
    if not preview:
        return "no preview of what the restore would lose was confirmed"
    now = _checksums(call, list(preview))
    moved = [t for t, v in preview.items() if (now.get(t) or "NULL") != v]
    if moved:
        return f"rows changed in {', '.join(moved)} since the preview: what it showed is out of date"
    return None


def _launch(call: PhaseCall, plan: rb.RollbackPlan, run_id: str) -> int:
    session, sink, cfg = call.session, call.sink, call.config
    assert plan.db_target is not None
    if plan.db == "restore":
        limit = int(cfg.migration.lock_wait_timeout)
        script, stdin = mysql_script_with_input(
            cfg.database,
            session.db_password(),
            [f"--init-command=SET SESSION lock_wait_timeout = {limit}"],
            input_file=plan.db_target,
        )
        display = f"restore {plan.db_target} into {cfg.database.name}"
        sink("info", [f"$ {display}   (detached run {run_id})"])
        return session.run_detached(run_id, script, sink, cancel=call.cancel, stdin=stdin, display=display)
    migrations, cleanup = None, ""
    if plan.migrations_from:
        migrations, cleanup = _migrations_of(call, plan.migrations_from)
    script = migration_script(
        cfg, [("downgrade", plan.db_target)], mode="standalone", migrations_dir=migrations
    )
    if cleanup:
        script = f"( {script} ); rc=$?; {cleanup}; exit $rc"
    display = f"alembic downgrade {plan.db_target} (standalone: the app is not imported)"
    sink("info", [f"$ {display}   (detached run {run_id})"])
    password_line = migration_stdin("standalone", session.db_password())
    return session.run_detached(
        run_id, script, sink, cancel=call.cancel, stdin=password_line, display=display
    )


def _migrations_of(call: PhaseCall, commit: str) -> tuple[str, str]:
    """The deployed commit's migrations, extracted to a temporary directory (HEAD is the old code)."""
    cfg, session = call.config, call.session
    relative = cfg.migration.migrations_dir
    if posixpath.isabs(relative):
        raise RemoteError(f"cannot read {relative} from commit {commit[:12]}: it is outside the work tree")
    res = session.capture(["mktemp", "-d"], display="mktemp -d")
    tmp = res.stdout.strip()
    if res.exit_status != 0 or not tmp.startswith("/"):
        raise RemoteError(f"mktemp -d failed on the host: {res.stderr.strip()}")
    archive = shlex.join([cfg.app.git, "archive", "--format=tar", commit, "--", relative])
    script = f"cd -- {shlex.quote(cfg.app.path)} && {archive} | tar -x -C {shlex.quote(tmp)}"
    res = session.capture(script, display=f"git archive {commit[:12]} -- {relative} | tar -x")
    if res.exit_status != 0:
        raise RemoteError(f"cannot extract {relative} of {commit[:12]}: {res.stderr.strip()[:200]}")
    return posixpath.join(tmp, relative), f"rm -rf -- {shlex.quote(tmp)}"


def _after_db(call: PhaseCall, plan: rb.RollbackPlan, run_id: str, rc: int) -> PhaseOutcome:
    tables, problem = _read_db(call)
    facts: Facts = [("run id", run_id), ("exit code", str(rc))]
    facts += _db_facts(call, tables) if tables else [("database", problem or "")]
    what = f"{plan.db} {plan.db_target}"
    if rc != 0:
        return _failed(f"{what} FAILED (exit {rc}); read its output above", facts)
    if tables is None or tables.alembic != (plan.expected_revision,):
        now = ", ".join(tables.alembic or ()) if tables else "cannot verify"
        return _failed(f"{what} exited 0 but alembic_version is {now}, not {plan.expected_revision}", facts)
    return PhaseOutcome(PhaseStatus.OK, f"{what}: alembic_version is {plan.expected_revision}", tuple(facts))


# -- code ---------------------------------------------------------------------------------------


def rollback_code(call: PhaseCall) -> PhaseOutcome:
    """Move the branch back to the deploy's commit_before with ``git reset --keep`` (never HEAD~1)."""
    session, sink = call.session, call.sink
    app = call.config.app
    plan = _plan(call)
    target = plan.code_target or call.context.commit_before
    if target is None:
        return _failed("no commit to go back to: the deploy recorded no commit_before")

    def git(*argv: str) -> tuple[int, str, str]:
        res = session.capture(app_command(app, list(argv)), display=shlex.join(argv))
        return res.exit_status, res.stdout.strip(), res.stderr.strip()

    rc, head, err = git("git", "rev-parse", "--verify", "HEAD")
    if rc != 0:
        return _failed(f"cannot verify HEAD in {app.path}: {err}")
    if head == target:
        return PhaseOutcome(
            PhaseStatus.OK, f"HEAD already is {target[:12]}: nothing to do", (("HEAD", head),)
        )
    rc, dirty, err = git("git", "status", "--porcelain", "--untracked-files=no")
    if rc != 0 or dirty:
        sink("stderr", dirty.splitlines() or [err])
        return _failed(
            f"the work tree in {app.path} has local changes: commit or stash them first", [("HEAD", head)]
        )
    if git("git", "cat-file", "-e", f"{target}^{{commit}}")[0] != 0:
        return _failed(f"commit {target[:12]} is not in the repository on the host", [("HEAD", head)])
    _, branch, _ = git("git", "symbolic-ref", "--quiet", "--short", "HEAD")
    title = f"git reset --keep {target[:12]}"
    sink("info", [f"$ {title}   (on {branch or 'a detached HEAD'})"])
    rc = session.run(
        app_command(app, ["git", "reset", "--keep", target]), sink, cancel=call.cancel, display=title
    )
    _, after, _ = git("git", "rev-parse", "--verify", "HEAD")
    facts = (("HEAD before", head), ("HEAD after", after), ("branch", branch or "(detached)"))
    if rc != 0 or after != target:
        return _failed(f"{title} failed (exit {rc}); HEAD is {after[:12]}", list(facts))
    return PhaseOutcome(PhaseStatus.OK, f"{branch or 'HEAD'} reset from {head[:12]} to {target[:12]}", facts)


# -- verify -------------------------------------------------------------------------------------


def rollback_verify(call: PhaseCall) -> PhaseOutcome:
    """The app answers, alembic_version is the plan's, HEAD is commit_before, checksums compared honestly."""
    session, sink, ctx, cfg = call.session, call.sink, call.context, call.config
    plan = _plan(call)
    problems: list[str] = []
    unsure: list[str] = []
    facts: Facts = []
    if cfg.app.health_url:
        health = probe_url(session, cfg.app.health_url, sink)
        facts.append(("health", str(health) if health is not None else "down"))
        if health != 200:
            problems.append(f"{cfg.app.health_url} answers {health or 'nothing'}")
    else:
        unsure.append("no [app] health_url to ask")
    if cfg.app.check_url:
        check = probe_url(session, cfg.app.check_url, sink)
        facts.append(("check", f"{check or 'down'} (the previous code's own behaviour)"))
    head = session.capture(
        app_command(cfg.app, ["git", "rev-parse", "--verify", "HEAD"]), display="git rev-parse HEAD"
    )
    facts.append(("HEAD", head.stdout.strip() or "cannot verify"))
    if head.stdout.strip() != ctx.commit_before:
        problems.append(
            f"HEAD is {head.stdout.strip()[:12] or '?'}, not commit_before {str(ctx.commit_before)[:12]}"
        )
    tables, problem = _read_db(call)
    if tables is None:
        return _failed(problem or "cannot verify the database", facts)
    facts += _db_facts(call, tables)
    if tables.alembic != (plan.expected_revision,):
        problems.append(
            f"alembic_version is {', '.join(tables.alembic or ()) or '(none)'}, not {plan.expected_revision}"
        )
    before = rb.parse_checksums(ctx.checksum_before)
    backup_sums = _extras(call, "backup_checksum:") if plan.db == "restore" else {}
    expected = {e.table for e in cfg.migration.expected()}
    backup_sums = {t: v for t, v in backup_sums.items() if t in before or t in expected}
    now = _checksums(call, sorted(set(before) | set(backup_sums)))
    was = _extras(call, "columns_before:")  # lower-case table names, as parsed from the backup
    columns_before = {t: tuple(was[t.lower()].split(",")) for t in now if t.lower() in was}
    columns_now = {t: tuple(tables.columns.get(t.lower(), {})) for t in now}
    for v in rb.checksum_verdicts(
        before, now, columns_before=columns_before, columns_now=columns_now, backup_sums=backup_sums
    ):
        facts.append((f"CHECKSUM TABLE {v.table}", v.text))
        if v.ok is False:
            problems.append(f"{v.table}: {v.text}")
        elif v.ok is None:
            unsure.append(f"{v.table}: cannot compare")
    if not before and not backup_sums:
        unsure.append("the deploy recorded no checksum_before: cannot compare")
    if problems:
        return _failed("rollback not verified: " + "; ".join(problems), facts)
    if unsure:
        return PhaseOutcome(PhaseStatus.WARNING, "rolled back; " + "; ".join(unsure), tuple(facts))
    return PhaseOutcome(
        PhaseStatus.OK, "rolled back: the app answers, revision, code and checksums as before", tuple(facts)
    )


ROLLBACK_REGISTRY: tuple[PhaseSpec, ...] = (
    PhaseSpec("rollback_probe", "Find the state and plan the rollback", rollback_probe, timeout=900),
    PhaseSpec(
        "rollback_stop",
        "Stop the application",
        rollback_stop,
        changes_host=True,
        timeout=120,
        needs=("rollback_plan",),
    ),
    PhaseSpec(
        "rollback_preview", "Show what a restore would lose", rollback_preview, needs=("rollback_plan",)
    ),
    PhaseSpec(
        "rollback_db",
        "The database action (one)",
        rollback_db,
        changes_host=True,
        detached=True,
        needs=("rollback_plan",),
    ),
    PhaseSpec(
        "rollback_code",
        "Check out the previous code",
        rollback_code,
        changes_host=True,
        timeout=300,
        needs=("rollback_plan",),
    ),
    PhaseSpec(
        "rollback_start",
        "Start the application",
        rollback_start,
        changes_host=True,
        timeout=180,
        needs=("rollback_plan",),
    ),
    PhaseSpec(
        "rollback_verify", "Verify the rollback", rollback_verify, timeout=600, needs=("rollback_plan",)
    ),
)

ROLLBACK_PHASES: dict[str, PhaseSpec] = {spec.id: spec for spec in ROLLBACK_REGISTRY}
