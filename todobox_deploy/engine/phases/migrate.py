"""Checklist step 5, "Run the migration": Alembic on the host, detached, never launched twice.

The run id is derived from the deploy context, so a retry, a resumed session or a second click finds the
same run on the host: a running one is re-attached, a finished one is reported (never re-run), one that
left no exit code is "cannot verify". While it runs, a second DB connection watches the processlist for
a DDL stuck behind a metadata lock and names who holds it.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections import deque
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from todobox_deploy.core.context import DeployContext
from todobox_deploy.core.outcome import PhaseOutcome, PhaseStatus
from todobox_deploy.core.streams import OutputSink, Stream
from todobox_deploy.db.schema import query as db_query
from todobox_deploy.db.schema import quote_ident
from todobox_deploy.engine.migrate_runner import (
    APP_MODE_LINE,
    IMPORT_FAILED_LINE,
    STANDALONE_LINE,
    MigrationStep,
    RunnerMode,
    checked_steps,
    describe_steps,
    last_error_line,
    migration_script,
    migration_stdin,
)
from todobox_deploy.engine.phases.spec import PhaseCall
from todobox_deploy.remote.errors import CommandCancelled, LinkLost, RemoteError, RunLocked, RunStateUnknown

if TYPE_CHECKING:
    from todobox_deploy.engine.session import DeploySession

MDL_STATE = "waiting for table metadata lock"
NO_PROCESS = "cannot check metadata locks: missing PROCESS privilege"
_SYSTEM_USERS = {"system user", "event_scheduler", "unauthenticated user"}


def migration_run_id(ctx: DeployContext) -> str:
    """One run id per deploy: the target commit, the revision before and (when made) the backup."""
    commit = (ctx.commit_target or ctx.commit_after or "nocommit")[:12]
    parts = ["migrate", commit, ctx.db_revision_before or "none"]
    if ctx.backup is not None and ctx.backup.sha256:
        parts.append(ctx.backup.sha256[:8])
    return re.sub(r"[^A-Za-z0-9._-]", "_", "-".join(parts))[:128]


def planned_steps(ctx: DeployContext, expected_head: str) -> tuple[MigrationStep, ...]:
    """The pre-flight's plan when it set one, else a plain upgrade to the expected head."""
    if ctx.migration_plan:
        return tuple((str(c), str(r)) for c, r in ctx.migration_plan)
    return (("upgrade", expected_head),)


# -- metadata-lock watch -----------------------------------------------------------------------------


def _mentions(info: str | None, tables: Collection[str]) -> bool:
    if not info:
        return False
    return any(
        re.search(r"(?<![\w$])`?" + re.escape(t) + r"`?(?![\w$])", info, re.IGNORECASE) for t in tables
    )


def _who(row: Mapping[str, str]) -> str:
    return f"session {row.get('ID')} ({row.get('USER')}@{row.get('HOST')})"


def _short(text: str | None, limit: int = 120) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def lock_waits(
    processes: Sequence[Mapping[str, str]],
    transactions: Sequence[Mapping[str, str]] | None,
    tables: Collection[str],
) -> tuple[list[Mapping[str, str]], list[tuple[Mapping[str, str], bool]]]:
    """``(waiting, holders)``: sessions waiting for a metadata lock on ``tables``, and who may hold it.

    With the transactions list (INNODB_TRX, needs PROCESS) a holder is a session with an open transaction
    or a statement on the table (``True``: confirmed). Without it, every other visible session that is
    idle or busy on the table is a possible holder (``False``: an open transaction cannot be confirmed).
    """
    waiting = [
        p
        for p in processes
        if (p.get("STATE") or "").lower().startswith(MDL_STATE) and _mentions(p.get("INFO"), tables)
    ]
    if not waiting:
        return [], []
    waiting_ids = {p.get("ID") for p in waiting}
    in_trx = {t.get("ID") for t in transactions} if transactions is not None else set()
    holders: list[tuple[Mapping[str, str], bool]] = []
    for p in processes:
        if p.get("ID") in waiting_ids or (p.get("USER") or "") in _SYSTEM_USERS:
            continue
        if (p.get("STATE") or "").lower().startswith(MDL_STATE):
            continue  # queued behind the DDL, not holding
        busy_on_table = p.get("COMMAND") != "Sleep" and _mentions(p.get("INFO"), tables)
        if transactions is not None:
            if p.get("ID") in in_trx or busy_on_table:
                holders.append((p, True))
        elif p.get("COMMAND") == "Sleep" or busy_on_table:
            holders.append((p, False))
    return waiting, holders


def lock_report(
    waiting: Sequence[Mapping[str, str]],
    holders: Sequence[tuple[Mapping[str, str], bool]],
    transactions: Sequence[Mapping[str, str]] | None,
    limit: int,
) -> list[str]:
    """Warning lines naming the waiting DDL and its holders (text from the host: shown, never markup)."""
    started = {t.get("ID"): t.get("trx_started") for t in transactions or ()}
    lines = [
        f"WARNING: metadata lock: {_who(w)} has waited {w.get('TIME')} s: {_short(w.get('INFO'))}"
        for w in waiting
    ]
    for p, confirmed in holders:
        doing = "idle" if p.get("COMMAND") == "Sleep" else _short(p.get("INFO")) or p.get("COMMAND")
        since = f", transaction open since {started[p.get('ID')]}" if p.get("ID") in started else ""
        held = "held by" if confirmed else "possibly held by"
        lines.append(
            f"WARNING:   {held} {_who(p)}: {p.get('COMMAND')} for {p.get('TIME')} s, "
            f"state {p.get('STATE') or '-'}, {doing}{since}"
        )
    if not holders:
        lines.append("WARNING:   no holder is visible")
    lines.append(
        f"WARNING:   the DDL gives up after lock_wait_timeout = {limit} s; end the holder's transaction, "
        "or cancel the migration"
    )
    return lines


class LockWatch:
    """Polls the processlist on its own DB connection while the migration runs (a daemon thread)."""

    def __init__(
        self, session: DeploySession, sink: OutputSink, tables: Collection[str], interval: float = 1.0
    ) -> None:
        self.session, self.sink, self.tables, self.interval = session, sink, tuple(sorted(tables)), interval
        self.limit = session.config.migration.lock_wait_timeout
        self.notes: list[str] = []  # facts for the outcome
        self.holders_seen: dict[str, str] = {}  # session id -> "user@host"
        self.confirmed = True  # False: holders are guesses (no PROCESS privilege)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="migrate-lock-watch")
        self._told_error = False

    def __enter__(self) -> LockWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=15)

    def _warn(self, lines: list[str]) -> None:
        self.sink("stderr", lines)

    def _loop(self) -> None:
        conn: Any = None
        has_process = False
        last: object = None
        while not self._stop.is_set():
            try:
                if conn is None:
                    conn = self.session.open_db(read_timeout=10)
                    conn.autocommit(True)
                    has_process = self._probe_process(conn)
                last = self._check(conn, has_process, last)
            except Exception as exc:  # the watch must never break the migration: report once, retry
                if conn is not None:
                    _close(conn)
                    conn = None
                if not self._told_error and not self._stop.is_set():
                    self._told_error = True
                    self._warn([f"WARNING: cannot check metadata locks: {type(exc).__name__}: {exc}"])
                    self.notes.append(f"cannot check: {type(exc).__name__}")
            self._stop.wait(self.interval)
        if conn is not None:
            _close(conn)

    def _probe_process(self, conn: Any) -> bool:
        try:
            db_query(conn, "SELECT COUNT(*) FROM information_schema.INNODB_TRX")
            return True
        except Exception as exc:
            code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
            if code not in (1227, 1142, 1044):
                raise
        user = self.session.config.database.user
        self._warn(
            [
                f"WARNING: {NO_PROCESS} (only the sessions of {user} are visible; a holder under another "
                "account would not show)"
            ]
        )
        self.notes.append(NO_PROCESS)
        return False

    def _check(self, conn: Any, has_process: bool, last: object) -> object:
        processes = db_query(
            conn,
            "SELECT ID, USER, HOST, DB, COMMAND, TIME, STATE, LEFT(INFO, 400) AS INFO"
            " FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID()",
        ).dicts()
        transactions = (
            db_query(
                conn,
                "SELECT trx_mysql_thread_id AS ID, trx_started, trx_state FROM information_schema.INNODB_TRX",
            ).dicts()
            if has_process
            else None
        )
        waiting, holders = lock_waits(processes, transactions, self.tables)
        key = (tuple(w["ID"] for w in waiting), tuple(p["ID"] for p, _ in holders))
        if waiting and key != last:
            self._warn(lock_report(waiting, holders, transactions, self.limit))
            who = ", ".join(f"{p['ID']} ({p['USER']}@{p['HOST']})" for p, _ in holders) or "not visible"
            self.notes.append(
                f"{_who(waiting[0])} waited for a metadata lock on {'/'.join(self.tables)}; "
                f"{'held' if has_process else 'possibly held'} by {who}"
            )
            for p, confirmed in holders:
                self.holders_seen[p["ID"]] = f"{p['USER']}@{p['HOST']}"
                self.confirmed = self.confirmed and confirmed
        return key


def _close(conn: Any) -> None:
    with contextlib.suppress(Exception):
        conn.close()


# -- evidence after the run --------------------------------------------------------------------------


def read_revisions(session: DeploySession) -> tuple[str, ...] | str:
    """The rows of alembic_version, or a "cannot verify: ..." text when they cannot be read."""
    db = session.config.database
    try:
        conn = session.open_db()
    except Exception as exc:
        return f"cannot verify: the database could not be reached ({exc})"
    try:
        exists = db_query(
            conn,
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA=%s"
            " AND TABLE_NAME='alembic_version'",
            (db.name,),
        )
        if not exists.rows:
            return ()
        rows = db_query(conn, f"SELECT version_num FROM {quote_ident(db.name)}.`alembic_version`").rows
        return tuple(r[0] for r in rows)
    except Exception as exc:
        return f"cannot verify: alembic_version could not be read ({exc})"
    finally:
        _close(conn)


def revision_text(revisions: tuple[str, ...] | str) -> str:
    if isinstance(revisions, str):
        return revisions
    return ", ".join(revisions) or "(no alembic_version row)"


def conclude(
    expected_head: str,
    exit_code: int | None,
    revisions: tuple[str, ...] | str,
    error_line: str | None,
    holders: Mapping[str, str] | None = None,
    confirmed: bool = True,
) -> tuple[PhaseStatus, str]:
    """OK only when the run exited 0 and alembic_version holds exactly the expected head.

    ``holders`` (session id -> user@host) seen holding the metadata lock; ``confirmed`` False when they
    could only be guessed (no PROCESS privilege)."""
    now = revision_text(revisions)
    if isinstance(revisions, str):
        return PhaseStatus.FAILED, f"exit code {exit_code}; {now}: inspect the DB before anything else"
    if exit_code == 0 and revisions == (expected_head,):
        return PhaseStatus.OK, f"migrated: alembic_version is {expected_head}"
    if exit_code == 0:
        return PhaseStatus.FAILED, (
            f"the migration exited 0 but alembic_version is {now}, not the expected head {expected_head}"
        )
    why = error_line or "its output has no error line"
    blocked = ""
    if holders and ("1205" in why or "lock wait" in why.lower()):
        held = "held" if confirmed else "possibly held"
        blocked = f"; the metadata lock was {held} by " + ", ".join(
            f"session {i} ({w})" for i, w in holders.items()
        )
    return PhaseStatus.FAILED, (
        f"the migration failed (exit code {exit_code}): {why}{blocked}. MySQL DDL is not transactional: the "
        f"DDL before the failure stays applied; the DB is at {now}"
    )


# -- the phase ---------------------------------------------------------------------------------------


def _decide_mode(call: PhaseCall) -> tuple[RunnerMode, str]:
    wanted = call.config.migration.mode
    if wanted in ("app", "standalone"):
        return wanted, "set by [migration] mode"
    return "auto", (
        "[migration] mode = auto: the app's own Flask-Migrate when the app imports, else the standalone "
        "runner; decided on the host in the same run, so the app is imported once and nothing waits on a "
        "separate probe while the app is down"
    )


_RUNNERS: dict[str, RunnerMode] = {"app": "app", "standalone": "standalone", "auto": "auto"}


def ran_as(lines: Sequence[str]) -> tuple[str, str] | None:
    """Which runner an ``auto`` run used, from its output: ("app" | "standalone", why), or None."""
    why = "the app imported"
    for line in lines:
        if line.startswith(IMPORT_FAILED_LINE):
            why = "the app does not import" + line[len(IMPORT_FAILED_LINE) :]
        elif line.startswith(APP_MODE_LINE):
            return "app", why
        elif line.startswith(STANDALONE_LINE):
            return "standalone", why
    return None


def _run(
    call: PhaseCall, state: str, run_id: str, steps: Sequence[MigrationStep], mode: str, sink: OutputSink
) -> int | None:
    """Launch, re-attach to or re-read the run; the host's exit code (None when it has none)."""
    session = call.session
    if state == "absent":
        runner = _RUNNERS.get(mode, "auto")
        sink("info", [f"$ migrate ({mode}): {describe_steps(steps)}   [detached run {run_id}]"])
        return session.run_detached(
            run_id,
            migration_script(session.config, steps, mode=runner),
            sink,
            cancel=call.cancel,
            stdin=migration_stdin(runner, session.db_password()),
            display=f"migrate ({mode}): {describe_steps(steps)}",
        )
    sink("info", [f"the migration run {run_id} is still running on the host: re-attaching"])
    return session.connection.attach(run_id, sink, cancel=call.cancel, secrets=session.secrets)


def _reread(call: PhaseCall, run_id: str, code: int | None, sink: OutputSink) -> None:
    sink(
        "info",
        [f"the migration run {run_id} already finished on the host (exit code {code}); not run again:"],
    )
    try:
        call.session.connection.attach(run_id, sink, secrets=call.session.secrets)
    except RemoteError as exc:
        sink("stderr", [f"its log could not be re-read: {exc}"])


def _recorded_exit_code(session: DeploySession, run_id: str) -> int | None:
    try:
        return session.connection.run_state(run_id)[1]
    except RemoteError:
        return None


def migrate(call: PhaseCall) -> PhaseOutcome:
    session, sink, ctx = call.session, call.sink, call.context
    mig = session.config.migration
    started = time.monotonic()
    try:
        steps = tuple(checked_steps(planned_steps(ctx, mig.expected_head)))
    except ValueError as exc:
        return PhaseOutcome(PhaseStatus.FAILED, f"the migration plan cannot run: {exc}")
    if ctx.nothing_to_deploy and not ctx.migration_run:
        now = read_revisions(session)
        if not isinstance(now, str) and list(now) == [mig.expected_head]:
            call.establish(db_revision_after=revision_text(now))
            return PhaseOutcome(
                PhaseStatus.OK,
                f"nothing to migrate: alembic_version is the head {mig.expected_head} and the pre-flight "
                "found the schema complete; nothing was run",
                (("revision", revision_text(now)), ("steps", "none")),
            )
    run_id = ctx.migration_run or migration_run_id(ctx)
    session.db_password()  # resolved here, not in the watch thread (it may prompt)
    state, code, _ = session.connection.run_state(run_id)
    facts: list[tuple[str, str]] = [("run id", run_id), ("steps", describe_steps(steps))]

    if state == "unknown":
        if ctx.migration_run != run_id:
            call.establish(migration_run=run_id)
        now = revision_text(read_revisions(session))
        facts += [("exit code", "none (no rc file on the host)"), ("revision now", now)]
        return PhaseOutcome(
            PhaseStatus.FAILED,
            f"cannot verify: the migration run {run_id} left no exit code (killed, or the host rebooted); "
            f"inspect the DB before anything else (alembic_version: {now})",
            tuple(facts),
        )
    before = ctx.db_revision_before
    mode: str
    if state == "absent":
        mode, why = _decide_mode(call)
        before = before or revision_text(read_revisions(session))
        call.establish(migration_run=run_id, migrate_mode=mode)
    else:
        mode = ctx.migrate_mode or "unknown"
        why = "recorded when the run was launched" if ctx.migrate_mode else "not recorded in this session"
        if ctx.migration_run != run_id:
            call.establish(migration_run=run_id)
    facts.insert(0, ("mode", f"{mode} ({why})"))

    tail: deque[str] = deque(maxlen=400)

    def tee(stream: Stream, lines: list[str]) -> None:
        if stream in ("stdout", "stderr"):
            tail.extend(lines)
        sink(stream, lines)

    watch = LockWatch(session, tee, {mig.table, *(e.table for e in mig.expected())})
    exit_code: int | None = code
    interrupted: tuple[PhaseStatus, str] | None = None
    try:
        if state == "finished":
            _reread(call, run_id, code, tee)
        else:
            with watch:
                exit_code = _run(call, state, run_id, steps, mode, tee)
    except CommandCancelled as exc:
        interrupted = (
            PhaseStatus.CANCELLED,
            f"{exc}; MySQL DDL is not transactional: what ran before the cancel stays applied",
        )
        exit_code = _recorded_exit_code(session, run_id)
    except LinkLost as exc:
        interrupted = (
            PhaseStatus.FAILED,
            f"{exc}. Run this phase again to re-attach: it is never launched twice",
        )
    except RunStateUnknown as exc:
        interrupted = PhaseStatus.FAILED, f"cannot verify: {exc}"
    except RunLocked as exc:
        interrupted = PhaseStatus.FAILED, f"{exc}: run this phase again to re-attach"
    except ValueError as exc:  # a password the standalone runner cannot take on one line
        interrupted = PhaseStatus.FAILED, f"the migration cannot start: {exc}"
    seconds = time.monotonic() - started

    after = read_revisions(session)
    if not isinstance(after, str):
        call.establish(db_revision_after=revision_text(after))
    notes = "; ".join(dict.fromkeys(watch.notes))
    facts += [
        *((("metadata locks", notes),) if notes else ()),
        ("exit code", "none" if exit_code is None else str(exit_code)),
        ("revision", f"{before or '?'} -> {revision_text(after)}"),
        ("duration", "not measured: it ran before this call" if state == "finished" else f"{seconds:.1f} s"),
    ]
    if interrupted is not None:
        status, summary = interrupted[0], f"{interrupted[1]}; the DB is at {revision_text(after)}"
    else:
        status, summary = conclude(
            mig.expected_head,
            exit_code,
            after,
            last_error_line(list(tail)),
            watch.holders_seen,
            watch.confirmed,
        )
    if mode == "auto" and (used := ran_as(tail)):
        mode = used[0]
        call.establish(migrate_mode=mode)
        facts[0] = ("mode", f"{mode} (auto: {used[1]})")
    if status is PhaseStatus.OK:
        summary += f" ({mode} mode, {describe_steps(steps)})"
    if state == "finished":
        summary = f"run {run_id} had already finished (not run again): {summary}"
    return PhaseOutcome(status, summary, tuple(facts))
