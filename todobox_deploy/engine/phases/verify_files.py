"""Checklist step 3, "Verify Migration Files": the new migration is on the host, and there is one head.

The heads come from the migration files in the work tree (their ``revision`` /
``down_revision``), never from ``flask db heads``: that imports the app, which dies on a drifted schema.
"""

from __future__ import annotations

import posixpath

from todobox_deploy.core.outcome import PhaseOutcome, PhaseStatus
from todobox_deploy.engine.flask_cli import app_command
from todobox_deploy.engine.phases.spec import PhaseCall
from todobox_deploy.engine.revisions import graph_in_work_tree, history_lines


def verify_files(call: PhaseCall) -> PhaseOutcome:
    """List migrations/versions, check the expected file, and read the graph's heads (read-only)."""
    session, sink, cancel = call.session, call.sink, call.cancel
    app, mig = session.config.app, session.config.migration
    versions = posixpath.join(mig.migrations_dir, "versions")
    sink("info", [f"$ cd {app.path} && ls -la {versions}/"])
    listing_rc = session.run(
        app_command(app, ["ls", "-la", "--", versions]), sink, cancel=cancel, display=f"ls -la {versions}"
    )
    problems: list[str] = []
    if listing_rc != 0:
        problems.append(f"cannot list {versions} in {app.path} (exit {listing_rc})")
    file_present = None
    if mig.migration_file:
        check = session.capture(
            app_command(app, ["test", "-f", mig.migration_file]), display=f"test -f {mig.migration_file}"
        )
        file_present = check.exit_status == 0
        if not file_present:
            problems.append(f"{mig.migration_file} is missing: deploy the new code first (step 2)")
    if cancel.is_set():
        return PhaseOutcome(PhaseStatus.CANCELLED, "cancelled before reading the revision graph")

    sink("info", [f"$ the revision graph of {versions} in the work tree (the app is not imported)"])
    heads: list[str] = []
    try:
        graph, _ = graph_in_work_tree(session, mig.migrations_dir)
    except FileNotFoundError as exc:
        problems.append(str(exc))
    else:
        sink("stdout", history_lines(graph))
        heads = graph.heads()
        problems += graph.problems
        if len(heads) > 1:
            problems.append(
                f"multiple heads: {', '.join(heads)}; merge them (flask db merge) before deploying"
            )
        elif heads != [mig.expected_head]:
            problems.append(f"the head is {heads[0] if heads else '(none)'}, expected {mig.expected_head}")
    file_state = {True: "present", False: "MISSING", None: "(not configured)"}[file_present]
    facts = (
        ("migration file", file_state),
        ("heads", ", ".join(heads) or "(none)"),
        ("expected head", mig.expected_head),
    )
    if problems:
        return PhaseOutcome(PhaseStatus.FAILED, "; ".join(problems), facts)
    return PhaseOutcome(PhaseStatus.OK, f"migration files in place; single head {mig.expected_head}", facts)
