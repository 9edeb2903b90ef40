"""The rollback checklist: the seed's "Rollback Procedure (If needed)" as a tree of automated phases.

Titles and the seed's commands come from the main checklist's ``monitoring.rollback`` section; each step
says what the wizard does instead where the seed's command would be unsafe (``downgrade -1``,
``HEAD~1``, a restore *and* a downgrade). Ids start with ``rollback.``: none is shared with the main tree.
"""

from __future__ import annotations

from todobox_deploy.checklist.data import CHECKLIST
from todobox_deploy.checklist.model import ChecklistNode, NodeKind, check_ids

SEED_SECTION = "monitoring.rollback"


def _seed(node_id: str) -> ChecklistNode:
    node = CHECKLIST.find(f"{SEED_SECTION}.{node_id}")
    if node is None:
        raise LookupError(f"the seed checklist has no {SEED_SECTION}.{node_id}")
    return node


def _step(node_id: str, phase: str, title: str, text: str, *children: ChecklistNode) -> ChecklistNode:
    return ChecklistNode(f"rollback.{node_id}", title, NodeKind.AUTOMATED, text, tuple(children), phase=phase)


def _seeded(node_id: str, seed: str, phase: str, text: str) -> ChecklistNode:
    """A step titled like the seed's, its body the seed's command followed by what the wizard does."""
    s = _seed(seed)
    return _step(node_id, phase, s.title, f"Seed: {s.body}\n\n{text}")


def build_rollback_checklist() -> ChecklistNode:
    """Build (and check) the rollback tree; its AUTOMATED nodes name the ROLLBACK_PHASES ids, in order."""
    section = CHECKLIST.find(SEED_SECTION)
    if section is None:
        raise LookupError(f"the seed checklist has no {SEED_SECTION}")
    restore, downgrade = _seed("restore_db"), _seed("downgrade")
    database = _step(
        "database",
        "rollback_db",
        "2-3. Restore database from backup, or roll back migrations (never both)",
        "Exactly one database action, the one the probe chose: a downgrade to the explicit previous "
        "revision (standalone Alembic, the app is not imported), or a restore of the deploy's verified "
        "backup (which brings its own alembic_version back: no downgrade follows it), or nothing. It runs "
        "detached on the host under a fixed run id, so it is never run twice.",
        ChecklistNode(
            "rollback.database.restore",
            restore.title,
            NodeKind.REFERENCE,
            f"Seed: {restore.body}\n\nOnly when the database is damaged or half-applied; the option file "
            "goes on stdin, never the password on the command line.",
        ),
        ChecklistNode(
            "rollback.database.downgrade",
            downgrade.title,
            NodeKind.REFERENCE,
            f"Seed: {downgrade.body}\n\nNever `-1`: it steps back from wherever the database is. The wizard "
            "downgrades to the explicit previous revision, and only when the database is at the new head.",
        ),
    )
    root = ChecklistNode(
        "rollback",
        section.title,
        NodeKind.SECTION,
        section.body,
        (
            _step(
                "probe",
                "rollback_probe",
                "0. Find the state the host is in and plan the rollback",
                "Read-only: alembic_version, the migration's columns and indexes, HEAD, the work tree, the "
                "app, and the deploy's backup re-read on the host. Shows the plan: one database action, the "
                "code action, and why.",
            ),
            _seeded(
                "stop",
                "stop",
                "rollback_stop",
                "Stops the service and shows the health URL no longer answers.",
            ),
            _step(
                "preview",
                "rollback_preview",
                "1b. Before a restore: what it would lose",
                "With the app stopped: the backup is restored into a scratch schema and compared with "
                "production table by table (rows inserted, deleted or changed since the backup). Skipped "
                "when the plan has no restore.",
            ),
            database,
            _seeded(
                "code",
                "previous_code",
                "rollback_code",
                "Never `HEAD~1`: `git reset --keep <commit_before>` on the branch, the commit the deploy "
                "recorded before it moved the code; refused when the work tree has local changes.",
            ),
            _seeded("start", "start", "rollback_start", "Starts the service and waits for the health URL."),
            _seeded(
                "verify",
                "verify",
                "rollback_verify",
                "The health URL answers; alembic_version is the previous revision; HEAD is commit_before; "
                "CHECKSUM TABLE compared with the deploy's checksum_before (or 'cannot compare').",
            ),
        ),
    )
    check_ids(root)
    return root


ROLLBACK_CHECKLIST: ChecklistNode = build_rollback_checklist()
