"""Pre-flight, before the app is stopped: fetch the fix, read its migrations, classify the database.

Everything that can be known without downtime is known here: the target commit (fetched, nothing checked
out), its revision graph read from the migration files of that commit (no Flask command, no app import),
the process manager's entry point still present, the database's state against what the revisions claim
and the exact next action, what could block the ALTER (metadata locks), and the checksum of the table the
migration changes (so that a rollback can be compared with it).
"""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Callable

from todobox_deploy.core.outcome import Fact, How, PhaseOutcome, PhaseStatus
from todobox_deploy.core.streams import OutputSink
from todobox_deploy.db import live as db_live
from todobox_deploy.db.grants import visibility_gap
from todobox_deploy.db.schema import Connection
from todobox_deploy.engine.alembic_graph import RevisionGraph
from todobox_deploy.engine.dbstate import ALREADY_DONE, LiveSchema, Verdict, classify
from todobox_deploy.engine.flask_cli import NOT_FOUND, app_command, not_found_hint
from todobox_deploy.engine.phases.spec import PhaseCall
from todobox_deploy.engine.revisions import graph_at_commit, history_lines
from todobox_deploy.engine.session import DeploySession


class _Checks:
    """Collects problems (block the deploy), warnings and facts as the pre-flight goes."""

    def __init__(self, sink: OutputSink) -> None:
        self.sink = sink
        self.problems: list[str] = []
        self.warnings: list[str] = []
        self.facts: list[Fact] = []

    def fact(
        self, label: str, value: str, source: str = "", how: How = "observed", *, decisive: bool = False
    ) -> None:
        self.facts.append(Fact(label, value, how, source, decisive))

    def problem(self, text: str) -> None:
        self.problems.append(text)
        self.sink("error", [text])

    def warn(self, text: str) -> None:
        self.warnings.append(text)
        self.sink("stderr", [text])


def preflight(call: PhaseCall) -> PhaseOutcome:
    session, sink = call.session, call.sink
    cfg = session.config
    app, mig = cfg.app, cfg.migration
    checks = _Checks(sink)

    def git(*argv: str, title: str | None = None, show: bool = False) -> tuple[int, str, str]:
        if show:
            sink("info", [f"$ {title or shlex.join(argv)}"])
            rc = session.run(app_command(app, list(argv)), sink, cancel=call.cancel, display=title)
            return rc, "", ""
        res = session.capture(app_command(app, list(argv)), display=title or shlex.join(argv))
        return res.exit_status, res.stdout.strip(), res.stderr.strip()

    rc, head, err = git("git", "rev-parse", "--verify", "HEAD")
    if rc == NOT_FOUND:
        return PhaseOutcome(PhaseStatus.FAILED, err or not_found_hint(app.git, "[app] git"))
    if rc != 0:
        return PhaseOutcome(PhaseStatus.FAILED, f"{app.path} is not a git work tree on the host: {err}")
    call.establish(commit_before=head)
    upstream = f"{app.git_remote}/{app.git_branch}"
    rc, _, _ = git(
        "git", "fetch", "--", app.git_remote, app.git_branch, title=f"git fetch {upstream}", show=True
    )
    if rc != 0:
        return PhaseOutcome(PhaseStatus.FAILED, f"git fetch {upstream} failed (exit {rc}): nothing changed")
    rc, target, err = git("git", "rev-parse", "--verify", f"refs/remotes/{upstream}^{{commit}}")
    if rc != 0:
        return PhaseOutcome(PhaseStatus.FAILED, f"{upstream} does not resolve on the host: {err}")
    call.establish(commit_target=target)
    checks.fact("commit", f"{head[:12]} -> {target[:12]} ({upstream})", "git rev-parse after git fetch")
    _check_work_tree(git, head, target, checks)
    if call.cancel.is_set():
        return PhaseOutcome(PhaseStatus.CANCELLED, "cancelled after the fetch; nothing was changed")

    graph = _graph_at(session, target, mig.migrations_dir, checks)
    if mig.migration_file:
        rc, _, _ = git("git", "cat-file", "-e", f"{target}:{mig.migration_file}")
        checks.fact("migration file", "present" if rc == 0 else "MISSING", f"git cat-file -e {target[:12]}")
        if rc != 0:
            checks.problem(
                f"{mig.migration_file} is not in {target[:12]}: the fix commit lacks the migration"
            )
    if app.wsgi_file:
        rc, _, _ = git("git", "cat-file", "-e", f"{target}:{app.wsgi_file}")
        present = "present" if rc == 0 else "MISSING"
        checks.fact("entry point", f"{app.wsgi_file} {present} in {target[:12]}", "git cat-file -e")
        if rc != 0:
            checks.problem(
                f"{app.wsgi_file} (what the process manager loads) does not exist in {target[:12]}: "
                "the new code would not start; fix the process manager's config or the commit first"
            )
    verdict = _database(call, graph, checks) if graph is not None else None
    if verdict is not None:
        call.establish(db_state=verdict.state, migration_plan=verdict.plan)
        if head == target and verdict.state == ALREADY_DONE and not checks.problems:
            call.establish(nothing_to_deploy=True)
            checks.fact(
                "nothing to deploy",
                f"the host already runs {target[:12]} and the database is done: the app is not stopped",
                "the commit and the database state above",
            )
    outcome = _conclude(checks, verdict)
    if call.context.nothing_to_deploy:  # said first: the steps that follow leave the app running
        return dataclasses.replace(
            outcome, summary=f"nothing to deploy (the app is not stopped); {outcome.summary}"
        )
    return outcome


def _check_work_tree(
    git: Callable[..., tuple[int, str, str]], head: str, target: str, checks: _Checks
) -> None:
    rc, dirty, _ = git("git", "status", "--porcelain", "--untracked-files=no")
    if rc != 0 or dirty:
        checks.problem("the work tree has local changes: commit or stash them on the host first")
    rc, _, _ = git("git", "merge-base", "--is-ancestor", head, target)
    if rc == 1:
        checks.problem(f"{target[:12]} does not contain the deployed {head[:12]}: the branches diverged")
    elif rc != 0:
        checks.problem(f"cannot verify that {target[:12]} fast-forwards from {head[:12]} (git exit {rc})")
    if head == target:
        checks.fact("new code", "none: the host is already at the target commit", "git rev-parse")


def _graph_at(
    session: DeploySession, target: str, migrations_dir: str, checks: _Checks
) -> RevisionGraph | None:
    try:
        graph, versions = graph_at_commit(session, target, migrations_dir)
    except FileNotFoundError as exc:
        checks.problem(str(exc))
        return None
    source = f"the migration files of {target[:12]}"
    checks.fact(
        "revisions", f"{len(graph.revisions)} in {versions} (read from the files, app not imported)", source
    )
    checks.fact("heads", ", ".join(graph.heads()) or "(none)", source)
    for problem in graph.problems:
        checks.problem(problem)
    checks.sink("stdout", history_lines(graph))
    return graph


def _database(call: PhaseCall, graph: RevisionGraph, checks: _Checks) -> Verdict | None:
    session, sink = call.session, call.sink
    cfg = session.config
    db, mig = cfg.database, cfg.migration
    conn = session.open_db()
    try:
        sink("info", [f"reading the schema of {db.name} (INFORMATION_SCHEMA, alembic_version)"])
        tables = db_live.read_live_tables(conn, db.name)
        grant_lines = db_live.grants(conn)
        names = sorted({e.table for e in mig.expected()})
        for table in names:  # what the classification reads must be wholly visible, or it would guess
            visible = table.lower() in tables.columns
            gap = visibility_gap(grant_lines, db.name, table, visible, db.user)
            if gap or not visible:
                why = f"cannot verify: {gap}" if gap else f"table {table} does not exist in {db.name}"
                checks.fact(
                    "database state", why, "SHOW GRANTS, INFORMATION_SCHEMA", "cannot verify", decisive=True
                )
                checks.problem(f"cannot verify the database state: {gap or why}")
                return None
        if tables.alembic is None:
            gap = visibility_gap(grant_lines, db.name, "alembic_version", False, db.user)
            why = gap or "no alembic_version table"
            checks.fact(
                "database state",
                f"cannot verify: {why}",
                "SHOW GRANTS, INFORMATION_SCHEMA",
                "cannot verify",
                decisive=True,
            )
            checks.problem(f"cannot verify the revision: {why}")
            return None
        live = LiveSchema(tables.columns, tables.indexes, tables.alembic)
        if len(tables.alembic) == 1:
            call.establish(db_revision_before=tables.alembic[0])
        checks.fact("alembic_version", ", ".join(tables.alembic) or "(empty)", "SELECT FROM alembic_version")
        for e in mig.expected():
            ctype = tables.columns.get(e.table.lower(), {}).get(e.column.lower())
            checks.fact(f"{e.table}.{e.column}", ctype or "MISSING", "INFORMATION_SCHEMA.COLUMNS")
            if e.index:
                ix = live.index(e.table, e.index)
                state = "MISSING" if ix is None else f"on ({', '.join(ix[0])}){' unique' if ix[1] else ''}"
                checks.fact(f"index {e.index}", state, "INFORMATION_SCHEMA.STATISTICS")
        verdict = classify(graph, live, mig.expected(), mig.expected_head)
        _metadata_locks(conn, db.name, grant_lines, checks)
        tables_to_sum = sorted({e.table for e in mig.expected()})
        sums = [f"{t}={db_live.checksum(conn, db.name, t) or 'NULL'}" for t in tables_to_sum]
        call.establish(checksum_before="; ".join(sums))
        checks.fact("checksum before", "; ".join(sums), "CHECKSUM TABLE")
    finally:
        conn.close()
    source = "the live schema and alembic_version against what the revisions claim"
    checks.fact("database state", verdict.state, source, decisive=True)
    checks.fact("why", verdict.detail, source)
    checks.fact("next action", verdict.action, source)
    if verdict.plan:
        checks.fact("migration plan", " then ".join(f"{s} {r}" for s, r in verdict.plan), source)
    if verdict.blocked and not graph.problems:
        checks.problem(f"{verdict.state}: {verdict.detail}; {verdict.action}")
    return verdict


_PROCESSLIST = "INFORMATION_SCHEMA.PROCESSLIST and INNODB_TRX"


def _metadata_locks(conn: Connection, database: str, grant_lines: list[str], checks: _Checks) -> None:
    if not db_live.has_privilege(grant_lines, "PROCESS"):
        checks.fact(
            "metadata locks",
            "cannot check: missing PROCESS privilege (only own sessions are visible)",
            "SHOW GRANTS",
            "cannot verify",
        )
        checks.warn("cannot check for transactions that would block the ALTER: missing PROCESS privilege")
        return
    rows = db_live.blockers(conn, database)
    if rows.rows:
        checks.sink("stderr", ["open transactions / long queries that an ALTER would wait behind:"])
        checks.sink("stderr", rows.render())
        checks.warn(f"{len(rows.rows)} session(s) could block the ALTER (metadata lock)")
        ids = ", ".join(r[0] for r in rows.rows)
        checks.fact(
            "metadata locks", f"{len(rows.rows)} possible blocker(s): session ids {ids}", _PROCESSLIST
        )
    else:
        checks.fact("metadata locks", "no open transaction or long query in the schema", _PROCESSLIST)


def _conclude(checks: _Checks, verdict: Verdict | None) -> PhaseOutcome:
    facts = checks.facts
    if checks.problems:
        return PhaseOutcome.of(
            PhaseStatus.FAILED, "; ".join(checks.problems) + " (nothing was stopped)", facts
        )
    assert verdict is not None
    summary = f"{verdict.state}: {verdict.action}"
    if checks.warnings:
        return PhaseOutcome.of(PhaseStatus.WARNING, summary + "; " + "; ".join(checks.warnings), facts)
    return PhaseOutcome.of(PhaseStatus.OK, summary, facts)
