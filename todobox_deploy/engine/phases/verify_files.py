"""Checklist step 3, "Verify Migration Files": the new migration is on the host, and there is one head.

The heads come from the migration files in the work tree (their ``revision`` /
``down_revision``), never from ``flask db heads``: that imports the app, which dies on a drifted schema.
"""

from __future__ import annotations

import posixpath

from todobox_deploy.core.outcome import PhaseOutcome, PhaseStatus
from todobox_deploy.engine.flask_cli import app_command
from todobox_deploy.engine.phases.common import show_output
from todobox_deploy.engine.phases.spec import PhaseCall
from todobox_deploy.engine.revisions import graph_from_read, history_lines, work_tree_read


def verify_files(call: PhaseCall) -> PhaseOutcome:
    """List migrations/versions, check the expected file, and read the graph's heads (read-only), in one
    round trip: this step runs while the app is down."""
    session, sink = call.session, call.sink
    app, mig = session.config.app, session.config.migration
    versions = posixpath.join(mig.migrations_dir, "versions")
    steps = [(f"ls -la {versions}", app_command(app, ["ls", "-la", "--", versions]))]
    if mig.migration_file:
        steps.append((f"test -f {mig.migration_file}", app_command(app, ["test", "-f", mig.migration_file])))
    steps.append(work_tree_read(app, mig.migrations_dir))
    results = session.capture_steps(steps, stop_on_failure=False)
    listing, read = results[0], results[-1]
    sink("info", [f"$ cd {app.path} && ls -la {versions}/"])
    show_output(sink, listing)
    problems: list[str] = []
    if listing.exit_status != 0:
        problems.append(f"cannot list {versions} in {app.path} (exit {listing.exit_status})")
    file_present = None
    if mig.migration_file:
        file_present = results[1].exit_status == 0
        if not file_present:
            problems.append(f"{mig.migration_file} is missing: deploy the new code first (step 2)")

    sink("info", [f"$ the revision graph of {versions} in the work tree (the app is not imported)"])
    heads: list[str] = []
    try:
        graph = graph_from_read(app, mig.migrations_dir, read)
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
