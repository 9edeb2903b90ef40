"""Checklist step 4, "Check Database Before Migration": schema and Alembic evidence, read-only.

Evidence fails closed: a table, column or index is "MISSING" only when the DB user's grants cover it
(else a hidden one and a missing one look the same): otherwise the phase says *cannot verify* and names
the missing grant.
"""

from __future__ import annotations

from todobox_deploy.config import MigrationConfig
from todobox_deploy.core.outcome import Fact, PhaseOutcome, PhaseStatus, assumed, cannot_verify, observed
from todobox_deploy.core.streams import OutputSink
from todobox_deploy.db.schema import SchemaFacts, inspect_schema, quote_ident
from todobox_deploy.engine.flask_cli import parse_history_heads, parse_history_revisions
from todobox_deploy.engine.phases.spec import PhaseCall
from todobox_deploy.engine.revisions import graph_in_work_tree, history_lines


def _show(sink: OutputSink, title: str, lines: list[str]) -> None:
    sink("info", [f"$ {title}"])
    sink("stdout", lines)


def db_check(call: PhaseCall) -> PhaseOutcome:
    """DESCRIBE the table, check the column and index, read alembic_version and the migration history."""
    session, sink, cancel = call.session, call.sink, call.cancel
    cfg = session.config
    mig, db = cfg.migration, cfg.database
    sink("info", [f"connecting to {cfg.target.host} over SSH; database {db.name} at {db.host}:{db.port}"])
    conn = session.open_db()
    try:
        facts = inspect_schema(conn, db.name, mig.table, mig.column, db.user)
    finally:
        conn.close()
    sink("info", [f"server version {facts.server_version}"])
    table = f"{quote_ident(db.name)}.{quote_ident(mig.table)}"
    _show(sink, f"DESCRIBE {table};", facts.describe.render())
    _show(
        sink,
        f"SELECT COLUMN_NAME ... FROM INFORMATION_SCHEMA.COLUMNS WHERE TABLE_NAME='{mig.table}'"
        f" AND COLUMN_NAME='{mig.column}';",
        facts.column_rows.render(),
    )
    _show(sink, f"SHOW INDEX FROM {table} WHERE Column_name='{mig.column}';", facts.index_rows.render())
    if facts.alembic_table_exists:
        _show(sink, "SELECT * FROM alembic_version;", [*(f"  {v}" for v in facts.alembic_versions)])
    elif facts.alembic_gap:
        sink("stderr", [f"cannot verify alembic_version: {facts.alembic_gap}"])
    else:
        sink("stderr", ["alembic_version table is missing: the database is not under Flask-Migrate"])
    if facts.table_gap:
        sink("stderr", [f"cannot verify {mig.table}: {facts.table_gap}"])
    if cancel.is_set():
        return PhaseOutcome(PhaseStatus.CANCELLED, "cancelled before reading the migration history")

    sink("info", ["$ the migration history in the work tree (read from the files; the app is not imported)"])
    try:
        graph, _ = graph_in_work_tree(session, cfg.migration.migrations_dir)
        history = history_lines(graph)
        status = 1 if graph.problems else 0
        sink("stdout", history)
        if graph.problems:
            sink("stderr", list(graph.problems))
    except FileNotFoundError as exc:
        sink("stderr", [str(exc)])
        history, status = [], 1
    if facts.alembic_version is not None:
        call.establish(db_revision_before=facts.alembic_version)
    outcome = conclude(session.config.migration, facts, status, history)
    ctx = call.context
    if ctx.db_state is None or outcome.status is PhaseStatus.FAILED:
        return outcome
    plan = " then ".join(f"{s} {r}" for s, r in ctx.migration_plan or ()) or "nothing to run"
    return PhaseOutcome.of(  # step 5 runs the pre-flight's plan: say so here, where the operator reads it
        outcome.status,
        f"{outcome.summary}; the pre-flight found: {ctx.db_state}, step 5 runs: {plan}",
        [
            *outcome.evidence,
            observed("database state (pre-flight)", ctx.db_state, "the pre-flight, before the stop"),
            observed("step 5 runs", plan, "the pre-flight's plan"),
        ],
    )


def _schema_evidence(mig: MigrationConfig, facts: SchemaFacts) -> tuple[list[Fact], list[str]]:
    """The column, index and alembic_version facts (decisive), and what cannot be verified."""
    table_src = "INFORMATION_SCHEMA.COLUMNS, SHOW INDEX"
    alembic_src = "SELECT * FROM alembic_version"
    unknown: list[str] = []
    column_label, index_label = f"{mig.table}.{mig.column}", f"unique index {mig.index or ''}".strip()
    evidence: list[Fact] = []
    if facts.alembic_table_exists:
        shown = ", ".join(facts.alembic_versions) or "(none)"
        evidence.append(observed("alembic_version", shown, alembic_src, decisive=True))
    elif facts.alembic_gap:
        evidence.append(
            cannot_verify("alembic_version", f"cannot verify: {facts.alembic_gap}", decisive=True)
        )
        unknown.append(f"alembic_version: {facts.alembic_gap}")
    else:
        evidence.append(observed("alembic_version", "(no table)", "INFORMATION_SCHEMA.TABLES", decisive=True))
    index_ok = facts.unique_index_present(mig.index)
    for label, present in ((column_label, facts.column_present), (index_label, index_ok)):
        if present:
            evidence.append(observed(label, "present", table_src, decisive=True))
        elif facts.table_gap:
            evidence.append(
                cannot_verify(label, f"cannot verify: {facts.table_gap}", table_src, decisive=True)
            )
        else:
            evidence.append(observed(label, "MISSING", table_src, decisive=True))
    if facts.table_gap and not (facts.column_present and index_ok):
        unknown.append(f"{mig.table}: {facts.table_gap}")
    return evidence, unknown


def conclude(mig: MigrationConfig, facts: SchemaFacts, status: int, history: list[str]) -> PhaseOutcome:
    """What the schema evidence and the migration history (``status`` 0: a valid graph) say; an absence
    the DB user's grants do not cover is "cannot verify", never "MISSING"."""
    heads = parse_history_heads(history)
    revisions = parse_history_revisions(history)
    index_ok = facts.unique_index_present(mig.index)
    evidence, unknown = _schema_evidence(mig, facts)
    evidence += [
        observed("history heads", ", ".join(heads) or "(none)", "the migration files in the work tree"),
        assumed("expected head", mig.expected_head, "[migration] expected_head"),
        observed("server", facts.server_version, "SELECT VERSION()"),
    ]
    if unknown:
        return PhaseOutcome.of(PhaseStatus.FAILED, "cannot verify: " + "; ".join(unknown), evidence)
    problems: list[str] = []
    warnings: list[str] = []
    if status != 0:
        problems.append("the migration files do not form a valid revision graph (see above)")
    if not facts.table_exists:
        problems.append(f"table {mig.table} does not exist in {facts.database}")
    if len(facts.alembic_versions) > 1:
        problems.append(f"alembic_version has {len(facts.alembic_versions)} rows: multiple heads applied")
    if not facts.alembic_table_exists or not facts.alembic_versions:
        problems.append("no alembic_version row: the database is not stamped")
    if len(heads) > 1:
        problems.append(f"the migration history has multiple heads: {', '.join(heads)}")
    if status == 0 and mig.expected_head not in revisions:
        warnings.append(
            f"migration {mig.expected_head} is not in the migration history: "
            "deploy the new code first (step 2)"
        )
    current = facts.alembic_version
    if current and status == 0 and revisions and current not in revisions:
        problems.append(f"alembic_version {current} is not a revision the code knows")
    state = (
        f"alembic_version {current or '?'}; {mig.table}.{mig.column} "
        f"{'present' if facts.column_present else 'MISSING'}; index {'present' if index_ok else 'MISSING'}"
    )
    if problems:
        return PhaseOutcome.of(PhaseStatus.FAILED, "; ".join([state, *problems]), evidence)
    if warnings:
        return PhaseOutcome.of(PhaseStatus.WARNING, "; ".join([state, *warnings]), evidence)
    if current == mig.expected_head and facts.column_present and index_ok:
        return PhaseOutcome.of(PhaseStatus.OK, state + "; already migrated", evidence)
    return PhaseOutcome.of(PhaseStatus.OK, state + f"; upgrade to {mig.expected_head} needed", evidence)
